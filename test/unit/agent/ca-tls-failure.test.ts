// Which failed CA calls are a failed TLS authentication: every certificate verification result Node names (its
// documented list of X509 certificate error codes, copied here so a code dropped from the table fails this test),
// with words of its own; socket errors are not.
import { describe, expect, it } from 'vitest';
import { CaIdentityError, caTlsFailureOf, VERIFY_RESULT_CODES } from '../../../src/agent/ca-tls-failure.js';
import { caSpiffeId, TrustDomain } from '../../../src/identity/index.js';

/** Node's `tls` documentation, "X509 certificate error codes", plus UNSPECIFIED for the ones it has no name for. */
const NODE_VERIFY_CODES = [
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_CRL',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CRL_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CRL_NOT_YET_VALID',
  'CRL_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
  'OUT_OF_MEM',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
  'UNSPECIFIED',
];

function coded(code: string, message = 'x'): Error {
  return Object.assign(new Error(message), { code });
}

describe('caTlsFailureOf', () => {
  it.each(NODE_VERIFY_CODES)('fail/%s → a TLS authentication failure', (code) => {
    const failure = caTlsFailureOf(coded(code));
    expect(failure?.code).toBe(code);
    expect(['untrusted_chain', 'certificate']).toContain(failure?.kind);
  });

  it('ok/the table holds exactly Node’s list, no code twice', () => {
    expect([...VERIFY_RESULT_CODES].sort()).toEqual([...NODE_VERIFY_CODES].sort());
  });

  it.each([
    ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'untrusted_chain'],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'untrusted_chain'],
    ['INVALID_PURPOSE', 'certificate'],
    ['CERT_HAS_EXPIRED', 'certificate'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'handshake'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'handshake'],
  ])('fail/%s → kind %s', (code, kind) => {
    expect(caTlsFailureOf(coded(code))?.kind).toBe(kind);
  });

  it('fail/the CA identity check’s own refusal → kind identity, carrying what it saw', () => {
    const refused = new CaIdentityError(caSpiffeId(TrustDomain.parse('example.org')), [
      'spiffe://other.org/meshauth/ca',
    ]);
    expect(caTlsFailureOf(new Error('request failed', { cause: refused }))).toEqual({
      kind: 'identity',
      code: 'ERR_MESHAUTH_CA_IDENTITY',
      refused,
    });
  });

  it('fail/INVALID_PURPOSE → says the serving certificate lacks serverAuth', () => {
    const failure = caTlsFailureOf(coded('INVALID_PURPOSE', 'unsuitable certificate purpose'));
    expect(failure).toEqual({
      kind: 'certificate',
      code: 'INVALID_PURPOSE',
      advice: expect.stringContaining('not valid for a TLS server (extendedKeyUsage without serverAuth)'),
    });
  });

  it('fail/a verification result wrapped as a cause is found', () => {
    const wrapped = new Error('request failed', { cause: coded('PATH_LENGTH_EXCEEDED') });
    expect(caTlsFailureOf(wrapped)?.code).toBe('PATH_LENGTH_EXCEEDED');
  });

  it.each(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'ERR_CERTAIN_OTHER', 'toString'])(
    'ok/%s → not a TLS failure (unreachable)',
    (code) => {
      expect(caTlsFailureOf(coded(code))).toBeUndefined();
    },
  );

  it('ok/no error, no code → undefined', () => {
    expect(caTlsFailureOf(undefined)).toBeUndefined();
    expect(caTlsFailureOf(new Error('no code'))).toBeUndefined();
  });
});
