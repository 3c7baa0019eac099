// Hostile CSRs against the real CA API (TLS on 127.0.0.1): an RSA key with a small public exponent or a modulus
// anyone can factor, a CSR with data after it, an EC key at the point at infinity or in the hybrid form and a request
// of a thousand tiny ASN.1 elements are refused with MESHAUTH_ERR_CSR_INVALID, one metric increment and one log line; the CA stays up.
import { describe, expect, it } from 'vitest';
import { createCsrPem, generateKeyPair } from '../../src/pki/index.js';
import { csrCaPerFile } from '../helpers/ca-dir.js';
import { caRejections } from '../helpers/ca-metrics.js';
import {
  berCsrWithAttributes,
  ecCsrWithPoint,
  emptyAttributes,
  hybridPointCsr,
  rsaCsrFromPrimes,
  rsaCsrWithExponent,
  rsaPrimes,
  withDerTrailer,
} from '../helpers/csr-variants.js';

const ID = 'spiffe://example.org/ns/shop/sa/web';
const { metrics, log, post } = csrCaPerFile(ID);

const rejected = (reason: string): Promise<number> => caRejections(metrics, reason);

describe('POST /v1/svid refuses hostile CSRs', () => {
  it('ok/RSA-2048 with e = 65537 is issued', async () => {
    expect((await post(await rsaCsrWithExponent(65537))).status).toBe(200);
  });

  it.each([
    ['fail/RSA-2048 with e = 3', () => rsaCsrWithExponent(3), 'csr_rsa_exponent'],
    // Signed correctly, but anyone can factor the modulus and sign as the workload.
    [
      'fail/RSA-2048 with the prime factor 739',
      () => rsaCsrFromPrimes(...rsaPrimes('small_factor')),
      'csr_rsa_weak_key',
    ],
    [
      'fail/CSR PEM followed by garbage',
      async () => `${await createCsrPem(await generateKeyPair())}\u0000garbage after the block`,
      'csr_trailing_data',
    ],
    [
      'fail/CSR DER with bytes appended inside the PEM block',
      async () => withDerTrailer(await createCsrPem(await generateKeyPair()), Buffer.from('trailer')),
      'csr_trailing_data',
    ],
    // Node 20 aborted the CA process reading such a key's details (before any credential is checked).
    [
      'fail/P-256 key that is the point at infinity',
      async () => ecCsrWithPoint('1.2.840.10045.3.1.7', Buffer.of(0)),
      'csr_key_type',
    ],
    [
      'fail/P-384 key that is the point at infinity',
      async () => ecCsrWithPoint('1.3.132.0.34', Buffer.of(0)),
      'csr_key_type',
    ],
    // OpenSSL reads it and the signature verifies, but the SVID would carry a key form no certificate may.
    ['fail/P-256 key in the hybrid point form', async () => hybridPointCsr(), 'csr_key_type'],
    // 12 KiB of tiny elements: tens of milliseconds of the general parser's time, before any credential is checked.
    [
      'fail/a thousand empty attributes in BER',
      async () => berCsrWithAttributes(emptyAttributes(1000)),
      'csr_too_large',
    ],
  ])('%s → 400 MESHAUTH_ERR_CSR_INVALID', async (_name, make, reason) => {
    const before = await rejected(reason);
    const logged = log.find({ event: 'ca_request_rejected', reason }).length;
    const { status, body } = await post(await make());
    expect(status).toBe(400);
    expect(body.code).toBe('MESHAUTH_ERR_CSR_INVALID');
    expect(await rejected(reason)).toBe(before + 1);
    expect(log.find({ event: 'ca_request_rejected', reason, code: 'MESHAUTH_ERR_CSR_INVALID' })).toHaveLength(
      logged + 1,
    );
    // The CA is still serving.
    expect((await post(await createCsrPem(await generateKeyPair()))).status).toBe(200);
  });
});
