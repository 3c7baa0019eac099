// The CA API refuses a CSR whose SubjectPublicKeyInfo is not the DER of its key: 400 MESHAUTH_ERR_CSR_INVALID,
// reason `csr_key_encoding`, one metric increment, one log line, no certificate. Found in review: the CA signed
// such a key byte for byte (an RSAPublicKey followed by attacker-chosen bytes, or with a BER length), so an
// authenticated workload got a CA-signed certificate that is not DER and carries its chosen blob.
import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createCsrPem, generateKeyPair, toPem } from '../../src/pki/index.js';
import { csrCaPerFile } from '../helpers/ca-dir.js';
import { caRejections } from '../helpers/ca-metrics.js';
import { oid, tlv } from '../helpers/der-writer.js';

const ID = 'spiffe://example.org/ns/shop/sa/web';
const { metrics, log, post } = csrCaPerFile(ID);

const hex = (s: string) => Buffer.from(s, 'hex');

/** A request carrying `spki`, correctly self-signed with sha256WithRSAEncryption or ecdsa-with-SHA256. */
function csr(spki: Buffer, privateKey: KeyObject, kind: 'rsa' | 'p256'): string {
  const info = tlv(0x30, [hex('020100'), tlv(0x30, []), spki, hex('a000')]);
  const algorithm =
    kind === 'rsa' ? tlv(0x30, [oid('1.2.840.113549.1.1.11'), hex('0500')]) : tlv(0x30, [oid('1.2.840.10045.4.3.2')]);
  return toPem(
    'CERTIFICATE REQUEST',
    tlv(0x30, [info, algorithm, tlv(0x03, [Buffer.of(0), sign('sha256', info, privateKey)])]),
  );
}

/** An RSA-2048 SPKI whose BIT STRING holds the RSAPublicKey followed by `after`. */
function rsaSpkiWith(after: Buffer): { spki: Buffer; privateKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const der = publicKey.export({ type: 'spki', format: 'der' });
  // The BIT STRING's content after its unused-bits octet is the RSAPublicKey: the last 270 bytes of a 2048-bit SPKI.
  const key = der.subarray(der.length - 270);
  const algorithm = tlv(0x30, [oid('1.2.840.113549.1.1.1'), hex('0500')]);
  return { spki: tlv(0x30, [algorithm, tlv(0x03, [Buffer.of(0), key, after])]), privateKey };
}

describe('POST /v1/svid refuses a public key that is not DER', () => {
  it('ok/the same RSA key written as OpenSSL writes it is issued', async () => {
    const { spki, privateKey } = rsaSpkiWith(Buffer.alloc(0));
    expect((await post(csr(spki, privateKey, 'rsa'))).status).toBe(200);
  });

  it.each([
    [
      'fail/RSA key with 2 KB of chosen bytes after the RSAPublicKey',
      () => {
        const { spki, privateKey } = rsaSpkiWith(Buffer.alloc(2048, 0x41));
        return csr(spki, privateKey, 'rsa');
      },
    ],
    [
      'fail/P-256 key as a compressed point',
      () => {
        const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
        const der = publicKey.export({ type: 'spki', format: 'der' });
        const point = der.subarray(der.length - 65);
        const compressed = Buffer.concat([Buffer.of(0x02 | ((point[64] as number) & 1)), point.subarray(1, 33)]);
        const algorithm = tlv(0x30, [oid('1.2.840.10045.2.1'), oid('1.2.840.10045.3.1.7')]);
        return csr(tlv(0x30, [algorithm, tlv(0x03, [Buffer.of(0), compressed])]), privateKey, 'p256');
      },
    ],
  ])('%s → 400 MESHAUTH_ERR_CSR_INVALID (csr_key_encoding)', async (_name, make) => {
    const reason = 'csr_key_encoding';
    const before = await caRejections(metrics, reason);
    const logged = log.find({ event: 'ca_request_rejected', reason }).length;
    const { status, body } = await post(make());
    expect(status).toBe(400);
    expect(body.code).toBe('MESHAUTH_ERR_CSR_INVALID');
    expect(await caRejections(metrics, reason)).toBe(before + 1);
    expect(log.find({ event: 'ca_request_rejected', reason, code: 'MESHAUTH_ERR_CSR_INVALID' })).toHaveLength(
      logged + 1,
    );
    // The CA is still serving.
    expect((await post(await createCsrPem(await generateKeyPair()))).status).toBe(200);
  });
});
