// Deciding whether the CA's answer may become our credential: the chain must be a valid
// X509-SVID of our trust domain leading to a root of the returned bundle, the leaf must carry OUR public key, and a
// renewal must keep our SPIFFE ID (SPEC §4). Anything else is rejected and the current credential stays.
// No I/O: the key comparison uses node:crypto KeyObjects only.
import { createPublicKey, KeyObject } from 'node:crypto';
import { isMeshauthError, MeshauthError } from '../errors/index.js';
import type { SpiffeId, TrustDomain } from '../identity/index.js';
import {
  type KeyType,
  parseCertificatesPem,
  parseCertificatesPemOnce,
  TrustBundle,
  validateX509SvidDer,
  X509Svid,
  type x509,
} from '../pki/index.js';
import type { Credentials } from './credential-holder.js';

export interface AcceptOptions {
  readonly trustDomain: TrustDomain;
  /** The public key we put in the CSR, and the private key that goes with it. */
  readonly publicKey: CryptoKey;
  readonly privateKeyPem: string;
  readonly keyType: KeyType;
  /** On renewal: the ID the new SVID must carry. */
  readonly expectedId?: SpiffeId;
  readonly now: Date;
}

/** Turns a CA answer into credentials, or throws MESHAUTH_ERR_CA_RESPONSE_INVALID with a bounded `reason`. */
export function acceptSvidResponse(
  response: { readonly certChainPem: readonly string[]; readonly bundlePem: readonly string[] },
  options: AcceptOptions,
): Credentials {
  // The leaf is new every time; the intermediates after it are the same for every SVID of this CA (cached).
  const chain = guard('malformed', () =>
    response.certChainPem.flatMap((pem, index) =>
      index === 0 ? parseCertificatesPem(pem) : parseCertificatesPemOnce(pem),
    ),
  );
  const bundle = parseBundle(options.trustDomain, response.bundlePem);
  // The CA should send leaf + intermediates; a root tacked on at the end is harmless but not part of the SVID.
  const certificates = chain.filter((cert, index) => index === 0 || !bundle.hasRoot(cert));
  const leaf = certificates[0] as x509.X509Certificate;
  // Same rules as validateX509Svid; the leaf's facts are read from its DER (no second pass over its extensions).
  const id = guard('svid', () =>
    validateX509SvidDer(new Uint8Array(leaf.rawData), certificates.slice(1), bundle, options.now),
  );
  if (!samePublicKey(leaf, options.publicKey)) {
    throw invalid('the certificate does not carry the public key of our CSR', 'wrong_key');
  }
  if (options.expectedId !== undefined && !id.equals(options.expectedId)) {
    throw invalid(`renewal returned ${id}, expected ${options.expectedId}`, 'id_changed');
  }
  const svid = new X509Svid({ id, certificates, privateKeyPem: options.privateKeyPem, keyType: options.keyType });
  return { svid, bundle };
}

/** A bundle from the CA: every entry a parseable CA certificate, labelled with our trust domain. */
export function parseBundle(trustDomain: TrustDomain, bundlePem: readonly string[]): TrustBundle {
  const roots = guard('malformed', () => bundlePem.flatMap((pem) => parseCertificatesPemOnce(pem)));
  if (roots.length === 0) throw invalid('empty trust bundle', 'empty_bundle');
  return new TrustBundle(trustDomain, roots);
}

/** Public keys compared as keys, not as encodings (a CA may re-encode the SPKI it copied from the CSR). */
function samePublicKey(leaf: x509.X509Certificate, ours: CryptoKey): boolean {
  try {
    const theirs = createPublicKey({ key: Buffer.from(leaf.publicKey.rawData), format: 'der', type: 'spki' });
    return theirs.equals(KeyObject.from(ours));
  } catch {
    return false;
  }
}

function guard<T>(reason: string, run: () => T): T {
  try {
    return run();
  } catch (cause) {
    if (isMeshauthError(cause)) {
      // Keep the validator's bounded reason (unknown_ca, trust_domain, expired, …) and its code in the detail.
      throw new MeshauthError('MESHAUTH_ERR_CA_RESPONSE_INVALID', `CA response rejected: ${cause.message}`, {
        reason: cause.reason ?? reason,
        detail: { validation: cause.code },
        cause,
      });
    }
    throw invalid(`CA response rejected: ${String(cause)}`, reason);
  }
}

function invalid(message: string, reason: string): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_CA_RESPONSE_INVALID', message, { reason });
}
