// The JWS ↔ DER conversions of ES256 signatures, held to node:crypto's own ieee-p1363 encoding: a signature converted
// either way verifies exactly when node:crypto's conversion would, every 64-byte string survives a round trip, and
// malformed DER is refused.
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { derFromP1363, p1363FromDer } from '../../../../src/authn/passport/ecdsa-signature.js';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });

describe('ES256 signature conversions', () => {
  it('a DER signature of node:crypto becomes the r ‖ s node:crypto verifies, and back', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (message) => {
        const der = sign('sha256', message, privateKey);
        const raw = p1363FromDer(der, 32);
        expect(raw).toHaveLength(64);
        expect(verify('sha256', message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, raw)).toBe(true);
        expect(derFromP1363(raw, 32)?.equals(der)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('an r ‖ s signature of node:crypto verifies as DER', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (message) => {
        const raw = sign('sha256', message, { key: privateKey, dsaEncoding: 'ieee-p1363' });
        const der = derFromP1363(raw, 32);
        expect(der !== undefined && verify('sha256', message, publicKey, der)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('every 64-byte string (leading zeros, high bits, zero values) survives DER and back', () => {
    const edgy = fc.oneof(
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.constant(new Uint8Array(32)),
      fc.constant(new Uint8Array(32).fill(0xff)),
      fc.integer({ min: 0, max: 31 }).map((zeros) => new Uint8Array(32).fill(0x80, zeros)),
    );
    fc.assert(
      fc.property(edgy, edgy, (r, s) => {
        const raw = Buffer.concat([r, s]);
        const der = derFromP1363(raw, 32);
        expect(der).toBeDefined();
        expect(p1363FromDer(der as Buffer, 32).equals(raw)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('a tampered r ‖ s does not verify after conversion, and a wrong length converts to nothing', () => {
    const message = Buffer.from('passport');
    const raw = sign('sha256', message, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    const tampered = Buffer.from(raw);
    tampered[40] = (tampered[40] as number) ^ 1;
    expect(verify('sha256', message, publicKey, derFromP1363(tampered, 32) as Buffer)).toBe(false);
    expect(derFromP1363(raw.subarray(0, 63), 32)).toBeUndefined();
    expect(derFromP1363(Buffer.concat([raw, Buffer.from([0])]), 32)).toBeUndefined();
  });

  it.each([
    ['trailing byte', '3006020101020101' + '00'],
    ['length beyond the end', '3006020101020201'],
    ['not a SEQUENCE', '3106020101020101'],
    ['an OCTET STRING for r', '3006040101020101'],
    ['an empty INTEGER', '30050200020101'],
    ['a negative r', '3006020180020101'],
    ['r longer than 32 bytes', `3026022101${'11'.repeat(32)}020101`],
    ['one INTEGER only', '3003020101'],
  ])('fail/%s → throws', (_name, hex) => {
    expect(() => p1363FromDer(Buffer.from(hex, 'hex'), 32)).toThrow();
  });
});
