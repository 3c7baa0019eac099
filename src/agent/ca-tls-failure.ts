// Which failed calls to the CA are a failed TLS authentication (the CA answered, with a certificate this client
// cannot trust) rather than a CA that cannot be reached, and what a user can do about each. Pure: no I/O.
import { causeChain } from '../errors/index.js';
import { SpiffeId } from '../identity/index.js';

/** The code of CaIdentityError: internal, it never reaches a message (caIdentityRefusal words the refusal). */
const CA_IDENTITY_ERROR = 'ERR_MESHAUTH_CA_IDENTITY';

/** The CA identity check's refusal, with what it looked for and what it saw, for caIdentityRefusal's words. */
export class CaIdentityError extends Error {
  readonly code = CA_IDENTITY_ERROR;
  readonly expected: SpiffeId;
  /** The URI SANs of the CA's certificate; undefined when the certificate could not be parsed. */
  readonly found: readonly string[] | undefined;

  constructor(expected: SpiffeId, found: readonly string[] | undefined, cause?: unknown) {
    super(
      found === undefined
        ? 'CA certificate cannot be parsed'
        : `CA certificate does not carry the SPIFFE ID ${expected} (found ${found.join(', ') || 'none'})`,
      cause === undefined ? undefined : { cause },
    );
    this.name = 'CaIdentityError';
    this.expected = expected;
    this.found = found;
  }
}

/**
 * OpenSSL's verification results for a server certificate that does not chain to any of the roots given: the trust
 * bundle is another CA's (or the URL names another CA), which no retry mends.
 */
const UNTRUSTED_CHAIN_CODES: ReadonlySet<string> = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
]);

const REVOCATION_LIST =
  'a revocation list needed to check its certificate is missing or unusable (this client loads none)';
/** A meshauth CA mints its own serving certificate fit for a TLS server: an unfit one is most likely another server's. */
const NOT_THE_CA = 'check that the URL names the meshauth CA and not another server';
const VALIDITY_FIELD = 'a certificate of its chain has a malformed validity date: re-issue that certificate';

/**
 * Every other verification result Node names for a peer certificate (the rest of OpenSSL's arrive as UNSPECIFIED),
 * with what it means for the CA's chain. Each one is the CA's certificate refused, never a CA that is down: OpenSSL's
 * own words ("unsuitable certificate purpose") read like a transport fault.
 */
const CERTIFICATE_FAILURES: Readonly<Record<string, string>> = {
  CERT_HAS_EXPIRED:
    "a certificate of its chain has expired by this machine's clock: check this machine's clock, and that the CA " +
    'serves a current certificate',
  CERT_NOT_YET_VALID:
    "a certificate of its chain is not valid yet by this machine's clock: check the clocks of this machine and " +
    'of the CA',
  ERROR_IN_CERT_NOT_BEFORE_FIELD: VALIDITY_FIELD,
  ERROR_IN_CERT_NOT_AFTER_FIELD: VALIDITY_FIELD,
  // OpenSSL checks the purpose of every certificate of the chain: an issuer that is not a CA ends here too.
  INVALID_PURPOSE:
    'its serving certificate is not valid for a TLS server (extendedKeyUsage without serverAuth), or its issuer is ' +
    `not a CA: ${NOT_THE_CA}`,
  INVALID_CA: `its serving certificate was issued by a certificate that is not a CA (no CA:TRUE): ${NOT_THE_CA}`,
  PATH_LENGTH_EXCEEDED:
    'its chain has more intermediates than the pathLenConstraint of an issuer allows: the CA must serve a chain ' +
    'within that limit',
  CERT_CHAIN_TOO_LONG: 'its chain is longer than this client verifies: the CA must serve a shorter chain',
  CERT_REVOKED: 'its certificate is revoked: the CA must serve a certificate that is not',
  CERT_REJECTED:
    'the root its chain ends on is marked in the trust bundle as rejected for this use: use a bundle whose roots ' +
    'carry no such mark',
  HOSTNAME_MISMATCH: 'its certificate does not name the host of the URL',
  UNABLE_TO_DECRYPT_CERT_SIGNATURE:
    'the signature of a certificate of its chain cannot be read: the CA must serve an intact chain',
  UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
    'the public key of an issuer in its chain cannot be read: the CA must serve an intact chain',
  UNABLE_TO_GET_CRL: REVOCATION_LIST,
  UNABLE_TO_DECRYPT_CRL_SIGNATURE: REVOCATION_LIST,
  CRL_SIGNATURE_FAILURE: REVOCATION_LIST,
  CRL_NOT_YET_VALID: REVOCATION_LIST,
  CRL_HAS_EXPIRED: REVOCATION_LIST,
  ERROR_IN_CRL_LAST_UPDATE_FIELD: REVOCATION_LIST,
  ERROR_IN_CRL_NEXT_UPDATE_FIELD: REVOCATION_LIST,
  OUT_OF_MEM: "this process ran out of memory while verifying its certificate: check the process's memory limit",
  // Node's name for every verification result it has no name of its own for (a name constraint broken, a key
  // usage that forbids signing, an unhandled critical extension).
  UNSPECIFIED:
    'its chain breaks a rule of certificate verification (e.g. a name constraint of an issuer, or a critical ' +
    'extension this client does not know): the CA must serve a certificate its issuers allow',
};

export type CaTlsFailure =
  /** The chain does not reach any root given: the bundle or the URL is the wrong one. */
  | { readonly kind: 'untrusted_chain'; readonly code: string }
  /** The chain reaches the roots but a certificate of it is unfit; `advice` says what to do. */
  | { readonly kind: 'certificate'; readonly code: string; readonly advice: string }
  /** The CA's certificate lacks the CA's SPIFFE ID; `refused` says what the check looked for and what it saw. */
  | { readonly kind: 'identity'; readonly code: string; readonly refused: CaIdentityError }
  /** The handshake itself failed (a TLS alert, a protocol mismatch): Node's and OpenSSL's words say which. */
  | { readonly kind: 'handshake'; readonly code: string };

/** What `error` (or one of its causes) says about the TLS authentication of the CA, or undefined if not that. */
export function caTlsFailureOf(error: unknown): CaTlsFailure | undefined {
  for (const e of causeChain(error)) {
    const code = (e as { code?: unknown }).code;
    if (typeof code !== 'string') continue;
    if (UNTRUSTED_CHAIN_CODES.has(code)) return { kind: 'untrusted_chain', code };
    const advice = Object.hasOwn(CERTIFICATE_FAILURES, code) ? CERTIFICATE_FAILURES[code] : undefined;
    if (advice !== undefined) return { kind: 'certificate', code, advice };
    if (e instanceof CaIdentityError) return { kind: 'identity', code, refused: e };
    if (/^ERR_(TLS|SSL)_/.test(code)) return { kind: 'handshake', code };
  }
  return undefined;
}

/**
 * Why the CA at `caUrl` failed the identity check, in words and without the internal code. A CA ID of another trust
 * domain is named as such: the configured trust domain and the CA's disagree, which no retry mends. `ours` names
 * where this client's trust domain came from (the config's `trustDomain` key, or the bundle's roots).
 */
export function caIdentityRefusal(
  caUrl: string,
  failure: Extract<CaTlsFailure, { kind: 'identity' }>,
  ours = "this config's trustDomain",
): string {
  const { refused } = failure;
  const { expected, found } = refused;
  if (found === undefined) {
    const cause = refused.cause instanceof Error ? ` (${refused.cause.message})` : '';
    return `its certificate cannot be parsed${cause}: ${NOT_THE_CA}`;
  }
  const domains = [...new Set(found.flatMap((uri) => SpiffeId.tryParse(uri)?.trustDomain.name ?? []))];
  const own = expected.trustDomain.name;
  if (domains.length > 0 && !domains.includes(own)) {
    return (
      `the CA at ${caUrl} is of trust domain ${domains.join(', ')}, ${ours} is ${own} ` +
      `(its certificate carries ${found.join(', ')}, not ${expected})`
    );
  }
  const carries = found.length === 0 ? 'no URI SAN' : found.join(', ');
  return `its certificate does not carry the CA's SPIFFE ID ${expected} as its one URI SAN (it carries ${carries}): ${NOT_THE_CA}`;
}

/** Every code this module reads as a certificate verification result: for a test that Node's list is covered. */
export const VERIFY_RESULT_CODES: readonly string[] = [...UNTRUSTED_CHAIN_CODES, ...Object.keys(CERTIFICATE_FAILURES)];
