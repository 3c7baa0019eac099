// Ed25519 public keys of small order in a CSR. Under such a key a "signature" needs no private key: with the
// identity point, R = identity and S = 0 verifies for every message on OpenSSL 3.0 (Node 20), so the CA issued an
// SVID for a request that proved no possession, usable by anyone who sees it. importSpki (and so verifyCsrPem on
// both of its paths) refuses the eight points of small order and every encoding with y >= p. The reference below
// decodes the point and multiplies it by the cofactor, independently of src/.
import { generateKeyPairSync, sign } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MeshauthError } from '../../../src/errors/index.js';
import { importSpki, toPem, verifyCsrPem } from '../../../src/pki/index.js';
import { tlv } from '../../helpers/der-writer.js';
import { fuzzParams } from '../fuzz/fuzz-settings.js';

const P = 2n ** 255n - 19n;
const D = (((-121665n * inverse(121666n)) % P) + P) % P;
const SQRT_M1 = power(2n, (P - 1n) / 4n);

function power(base: bigint, exponent: bigint): bigint {
  let result = 1n;
  let b = ((base % P) + P) % P;
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % P;
    b = (b * b) % P;
  }
  return result;
}

function inverse(value: bigint): bigint {
  return power(value, P - 2n);
}

type Point = readonly [bigint, bigint];

/** The point of an encoding (RFC-style decoding without the canonical-y check); undefined when it is no point. */
function decode(bytes: Buffer): Point | undefined {
  const sign = (bytes[31] as number) >> 7;
  const le = Buffer.from(bytes);
  le[31] = (le[31] as number) & 0x7f;
  const y = BigInt(`0x${Buffer.from(le).reverse().toString('hex')}`) % P;
  const u = (y * y - 1n + P) % P;
  const v = (D * y * y + 1n) % P;
  let x = (u * power(v, 3n) * power(u * power(v, 7n), (P - 5n) / 8n)) % P;
  const check = (v * x * x) % P;
  if (check === (P - u) % P) x = (x * SQRT_M1) % P;
  else if (check !== u) return undefined;
  if (x === 0n && sign === 1) return [0n, y];
  if (Number(x & 1n) !== sign) x = P - x;
  return [x, y];
}

function add([x1, y1]: Point, [x2, y2]: Point): Point {
  const t = (D * x1 * x2 * y1 * y2) % P;
  return [
    ((x1 * y2 + y1 * x2) * inverse(1n + t)) % P,
    (((((y1 * y2 + x1 * x2) % P) * inverse((1n - t + P) % P)) % P) + P) % P,
  ];
}

/** Whether the encoding is a point that eight times itself is the identity. */
function ofSmallOrder(bytes: Buffer): boolean {
  let point = decode(bytes);
  if (point === undefined) return false;
  for (let i = 0; i < 3; i++) point = add(point, point);
  return point[0] === 0n && point[1] === 1n;
}

function yAtLeastP(bytes: Buffer): boolean {
  const le = Buffer.from(bytes);
  le[31] = (le[31] as number) & 0x7f;
  return BigInt(`0x${le.reverse().toString('hex')}`) >= P;
}

const PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const spkiOf = (key: Buffer) => Buffer.concat([PREFIX, key]);
const IDENTITY = Buffer.concat([Buffer.of(1), Buffer.alloc(31)]);
/** y of the small-order points and y >= p values (little-endian, sign bit clear). */
const SPECIAL_Y = [
  '00',
  '01',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'f0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].map((hex) => {
  const bytes = Buffer.alloc(32);
  Buffer.from(hex, 'hex').copy(bytes);
  return bytes;
});
const SPECIAL = SPECIAL_Y.flatMap((y) => {
  const negative = Buffer.from(y);
  negative[31] = (negative[31] as number) | 0x80;
  return [y, negative];
});

function keyTypeError(read: () => unknown): string | undefined {
  try {
    read();
    return undefined;
  } catch (error) {
    return error instanceof MeshauthError ? error.code : 'other';
  }
}

/** A request for the Ed25519 key `raw` whose signature is `signature` (64 bytes). */
function edCsr(raw: Buffer, signature: Buffer): string {
  const info = tlv(0x30, [
    Buffer.from('020100', 'hex'),
    Buffer.from('3000', 'hex'),
    spkiOf(raw),
    Buffer.from('a000', 'hex'),
  ]);
  const algorithm = Buffer.from('300506032b6570', 'hex');
  return toPem('CERTIFICATE REQUEST', tlv(0x30, [info, algorithm, tlv(0x03, [Buffer.of(0), signature])]));
}

describe('Ed25519 keys of small order', () => {
  it('fail/a request for the identity point, "signed" with R = identity and S = 0, is refused → key_type', async () => {
    const forged = Buffer.concat([IDENTITY, Buffer.alloc(32)]);
    // Whether this runtime's OpenSSL takes the forgery (OpenSSL 3.0 does) is its own affair: the CA must not rely on it.
    const error = await verifyCsrPem(edCsr(IDENTITY, forged)).then(
      () => undefined,
      (e: unknown) => e as MeshauthError,
    );
    expect({ code: error?.code, reason: error?.reason }).toEqual({
      code: 'MESHAUTH_ERR_CSR_INVALID',
      reason: 'key_type',
    });
  });

  it('every point of small order and every y >= p is refused by importSpki, with either sign bit', () => {
    for (const key of SPECIAL) {
      expect({ key: key.toString('hex'), small: ofSmallOrder(key) || yAtLeastP(key) }).toEqual({
        key: key.toString('hex'),
        small: true,
      });
      expect({ key: key.toString('hex'), error: keyTypeError(() => importSpki(spkiOf(key))) }).toEqual({
        key: key.toString('hex'),
        error: 'MESHAUTH_ERR_KEY_TYPE',
      });
    }
  });

  it('property: importSpki refuses exactly the small-order points and y >= p among the encodings that are points', () => {
    const encoding = fc.oneof(
      fc.constantFrom(...SPECIAL),
      fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes) => Buffer.from(bytes)),
    );
    fc.assert(
      fc.property(encoding, (key) => {
        const weak = ofSmallOrder(key) || yAtLeastP(key);
        const error = keyTypeError(() => importSpki(spkiOf(key)));
        if (weak) expect(error).toBe('MESHAUTH_ERR_KEY_TYPE');
        else if (decode(key) !== undefined) expect(error).toBeUndefined();
      }),
      fuzzParams(300),
    );
  });

  it('ok/real Ed25519 keys still make valid requests', async () => {
    for (let i = 0; i < 5; i++) {
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      const raw = publicKey.export({ type: 'spki', format: 'der' }).subarray(PREFIX.length);
      const info = tlv(0x30, [
        Buffer.from('020100', 'hex'),
        Buffer.from('3000', 'hex'),
        spkiOf(raw),
        Buffer.from('a000', 'hex'),
      ]);
      const pem = toPem(
        'CERTIFICATE REQUEST',
        tlv(0x30, [
          info,
          Buffer.from('300506032b6570', 'hex'),
          tlv(0x03, [Buffer.of(0), sign(null, info, privateKey)]),
        ]),
      );
      expect((await verifyCsrPem(pem)).keyType).toBe('ed25519');
    }
  });
});
