// The JWS ↔ DER conversions of ES256 signatures, held to node:crypto's own ieee-p1363 encoding: a signature converted
// either way verifies exactly when node:crypto's conversion would (valid ones and every kind of altered one), every
// 64-byte string survives a round trip, and malformed DER is refused.
import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { derFromP1363, p1363FromDer } from '../../../src/pki/ecdsa-signature.js';

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

  it('any r ‖ s verifies through DER exactly when node:crypto’s own conversion verifies it', () => {
    const n = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');
    const bytes32 = (value: bigint) => Buffer.from(value.toString(16).padStart(64, '0'), 'hex');
    const asBig = (bytes: Buffer) => BigInt(`0x${bytes.toString('hex')}`);
    const nodeVerifies = (message: Uint8Array, raw: Buffer) => {
      try {
        return verify('sha256', message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, raw);
      } catch {
        return false;
      }
    };
    const oursVerifies = (message: Uint8Array, raw: Buffer) => {
      const der = derFromP1363(raw, 32);
      return der !== undefined && verify('sha256', message, publicKey, der);
    };
    // Each variant of a valid signature: itself, its high-S twin, r or s plus n, zeros, n, random bytes, a flipped
    // bit, one byte short or long, and DER bytes passed off as r ‖ s.
    const variants = (message: Uint8Array, flip: number): Buffer[] => {
      const raw = sign('sha256', message, { key: privateKey, dsaEncoding: 'ieee-p1363' });
      const r = asBig(raw.subarray(0, 32));
      const s = asBig(raw.subarray(32));
      const below = (value: bigint) => (value < 2n ** 256n ? value : 0n);
      const flipped = Buffer.from(raw);
      flipped[flip % 64] = (flipped[flip % 64] as number) ^ (1 << (flip % 8));
      return [
        raw,
        Buffer.concat([bytes32(r), bytes32(n - s)]),
        Buffer.concat([bytes32(below(r + n)), bytes32(s)]),
        Buffer.concat([bytes32(r), bytes32(below(s + n))]),
        Buffer.concat([bytes32(0n), bytes32(s)]),
        Buffer.concat([bytes32(r), bytes32(0n)]),
        Buffer.concat([bytes32(n), bytes32(s)]),
        randomBytes(64),
        flipped,
        raw.subarray(0, 63),
        Buffer.concat([raw, Buffer.alloc(1)]),
        sign('sha256', message, privateKey),
      ];
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(), (message, flip) => {
        for (const raw of variants(message, flip)) expect(oursVerifies(message, raw)).toBe(nodeVerifies(message, raw));
      }),
      { numRuns: 100 },
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

  it('P-521 (66-byte values, a DER SEQUENCE past 127 bytes) converts both ways as node:crypto does', () => {
    const p521 = generateKeyPairSync('ec', { namedCurve: 'P-521' });
    const message = Buffer.from('passport');
    for (let i = 0; i < 20; i++) {
      const der = sign('sha512', message, p521.privateKey);
      const raw = p1363FromDer(der, 66);
      expect(verify('sha512', message, { key: p521.publicKey, dsaEncoding: 'ieee-p1363' }, raw)).toBe(true);
      expect(derFromP1363(raw, 66)?.equals(der)).toBe(true);
    }
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
