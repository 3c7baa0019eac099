// Whether the certificate `cert renew` and `cert token` authenticate with is one the CA trusts, checked against the
// --bundle: the CA refuses another CA's certificate with "credential rejected" alone and tells why to its own log.
// It must not read files or dial anything: the caller gives it what it read.
import { MeshauthError } from '../errors/index.js';
import { SpiffeId } from '../identity/index.js';
import { type TrustBundle, uriSans, validateX509Svid, type x509 } from '../pki/index.js';
import type { CertificateUse } from './cert-validity.js';

/** What the CA cannot do with a certificate it does not trust, for the message. */
const CANNOT: Readonly<Record<CertificateUse, string>> = {
  renew: 'renew it',
  token: 'give a token for it',
};

/** The other way out, whichever input was wrong: a certificate from the CA at hand. */
export const NEW_SVID_HINT =
  'get a new SVID from this CA with `meshauth cert request` and a join token ' +
  '(`meshauth ca token create --id <spiffe-id>`)';

export interface CertificateFiles {
  /** The --cert file the chain was read from. */
  readonly cert: string;
  /** The --bundle file `bundle` was read from. */
  readonly bundle: string;
}

/**
 * The check the CA makes of a client certificate, against the --bundle, each refusal naming --cert and --bundle and
 * what to do. Codes are the validator's (MESHAUTH_ERR_SVID_TRUST_DOMAIN, MESHAUTH_ERR_SVID_UNKNOWN_CA, …): exit 2,
 * input to fix. Throws when no CA of the bundle's trust domain takes `chain` at `now` (another trust domain, not an
 * X509-SVID). A chain that leads to none of the bundle's roots is returned, not thrown: the CA may still trust its
 * root, which the bundle lacks (between `ca rotate --root --activate` and `--retire` the CA trusts the previous root,
 * while a bundle of the new root alone authenticates it), so it is the answer only once the CA refuses the
 * certificate (caRefusal). Undefined when the bundle takes the certificate.
 */
export function checkTrustedByBundle(
  files: CertificateFiles,
  chain: readonly x509.X509Certificate[],
  bundle: TrustBundle,
  now: Date,
  use: CertificateUse,
): MeshauthError | undefined {
  try {
    validateX509Svid(chain, bundle, now);
    return undefined;
  } catch (error) {
    if (!(error instanceof MeshauthError)) throw error;
    const untrusted = new MeshauthError(error.code, untrustedMessage(files, chain, bundle, use, error), {
      ...(error.reason === undefined ? {} : { reason: error.reason }),
      cause: error,
    });
    if (error.code === 'MESHAUTH_ERR_SVID_UNKNOWN_CA') return untrusted;
    throw untrusted;
  }
}

function untrustedMessage(
  files: CertificateFiles,
  chain: readonly x509.X509Certificate[],
  bundle: TrustBundle,
  use: CertificateUse,
  error: MeshauthError,
): string {
  const ours = bundle.trustDomain.name;
  const id = chain[0] === undefined ? undefined : SpiffeId.tryParse(uriSans(chain[0])[0] ?? '');
  if (error.code === 'MESHAUTH_ERR_SVID_TRUST_DOMAIN' && id !== undefined) {
    const theirs = id.trustDomain.name;
    return (
      `--cert ${files.cert} holds ${id} of trust domain ${theirs}, but --bundle ${files.bundle} is the CA of ` +
      `${ours}, which trusts no other trust domain and cannot ${CANNOT[use]}: give --ca-url and --bundle of the CA ` +
      `of ${theirs} that issued it, or, for an identity in ${ours}, ${NEW_SVID_HINT}`
    );
  }
  const leaf = chain[0];
  if (
    error.code === 'MESHAUTH_ERR_SVID_UNKNOWN_CA' &&
    chain.length === 1 &&
    leaf !== undefined &&
    !isSelfIssued(leaf)
  ) {
    // A file with the leaf alone (a tool that writes only the leaf): the bundle holds roots only, so the chain misses
    // the intermediate whatever CA issued it. Saying it is another CA's would send the operator off to spend a token.
    return (
      `--cert ${files.cert} holds only its leaf, without the certificate that issued it (${leaf.issuer}): the CA ` +
      `checks the chain a client presents against the roots of its bundle, so the leaf alone cannot ${CANNOT[use]}: ` +
      'give --cert the chain the CA wrote (leaf, then intermediate, as `cert request` and `cert renew` write it), or ' +
      'append the intermediate to the file'
    );
  }
  if (error.code === 'MESHAUTH_ERR_SVID_UNKNOWN_CA') {
    // Only the bundle is read here, not the CA: either the certificate is another CA's, or the bundle is. The CA's
    // own certificate meets the bundle only in the TLS handshake, after this.
    return (
      `--cert ${files.cert} was not issued under the roots of --bundle ${files.bundle} (${error.message}), so the ` +
      `CA trusted by that bundle does not trust it and cannot ${CANNOT[use]}: if the certificate is another CA's ` +
      `(another \`ca init\`, or a root since retired), ${NEW_SVID_HINT}; otherwise give --ca-url and --bundle of ` +
      'the CA that issued it'
    );
  }
  return (
    `--cert ${files.cert} is not an X509-SVID the CA of --bundle ${files.bundle} accepts (${error.message}), so it ` +
    `cannot ${CANNOT[use]}: ${NEW_SVID_HINT}`
  );
}

function isSelfIssued(certificate: x509.X509Certificate): boolean {
  return certificate.issuer === certificate.subject;
}
