// The validity check `cert renew` and `cert token` make before dialling the CA: time comes in, bounds inclusive the
// way the CA's are (expired at NotAfter, valid from NotBefore).
import { beforeAll, describe, expect, it } from 'vitest';
import { assertCertificateValid } from '../../../src/cli/cert-validity.js';
import { MeshauthError } from '../../../src/errors/index.js';
import type { x509 } from '../../../src/pki/index.js';
import { TestCa } from '../../helpers/test-ca.js';

const NOT_BEFORE = new Date('2026-01-01T10:00:00Z');
const NOT_AFTER = new Date('2026-01-01T11:00:00Z');
let leaf: x509.X509Certificate;

beforeAll(async () => {
  const ca = await TestCa.create('example.org', new Date('2025-12-31T00:00:00Z'));
  leaf = (await ca.issue({ notBefore: NOT_BEFORE, notAfter: NOT_AFTER })).leaf;
});

function refusal(now: Date, use: 'renew' | 'token' = 'renew'): MeshauthError | undefined {
  try {
    assertCertificateValid('web.crt', leaf, now, use);
  } catch (error) {
    expect(error).toBeInstanceOf(MeshauthError);
    return error as MeshauthError;
  }
  return undefined;
}

describe('assertCertificateValid', () => {
  it.each([
    ['ok/at NotBefore', NOT_BEFORE],
    ['ok/a millisecond before NotAfter', new Date(NOT_AFTER.getTime() - 1)],
  ])('%s', (_name, now) => {
    expect(refusal(now)).toBeUndefined();
  });

  it('fail/at NotAfter → SVID_EXPIRED naming the file, when, why and the way out', () => {
    const error = refusal(new Date(NOT_AFTER.getTime() + 90_000));
    expect(error?.code).toBe('MESHAUTH_ERR_SVID_EXPIRED');
    expect(error?.reason).toBe('client_cert_expired');
    expect(error?.message).toBe(
      'web.crt expired at 2026-01-01T11:00:00.000Z (1m 30s ago): renewal authenticates to the CA with the current ' +
        'certificate, so an expired one cannot renew; get a new SVID with `meshauth cert request` (a new join ' +
        'token from `meshauth ca token create`) or `meshauth ca issue`',
    );
    expect(refusal(NOT_AFTER)?.code).toBe('MESHAUTH_ERR_SVID_EXPIRED');
  });

  it('fail/expired, for a token → says what a token request needs', () => {
    expect(refusal(new Date(NOT_AFTER.getTime() + 1000), 'token')?.message).toContain(
      'the CA authenticates a token request with this certificate, so an expired one cannot get a token',
    );
  });

  it('fail/before NotBefore → SVID_NOT_YET_VALID, check the clocks', () => {
    const error = refusal(new Date(NOT_BEFORE.getTime() - 2 * 3_600_000));
    expect(error?.code).toBe('MESHAUTH_ERR_SVID_NOT_YET_VALID');
    expect(error?.reason).toBe('client_cert_not_yet_valid');
    expect(error?.message).toBe(
      "web.crt is not valid before 2026-01-01T10:00:00.000Z (2h 0m from now by this host's clock, " +
        '2026-01-01T08:00:00.000Z), so the CA refuses it until then: check the clocks of this host and of the CA',
    );
    expect(refusal(new Date(NOT_BEFORE.getTime() - 1))?.code).toBe('MESHAUTH_ERR_SVID_NOT_YET_VALID');
  });
});
