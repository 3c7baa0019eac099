// ES256 signatures in a JWS are r ‖ s, 32 bytes each (RFC 7518 §3.4); OpenSSL signs and verifies the DER
// ECDSA-Sig-Value (SEQUENCE of two INTEGERs). node:crypto converts when handed `{ key, dsaEncoding: 'ieee-p1363' }`,
// but on Node 24 an options object in place of a KeyObject costs two internal exceptions before the key is found:
// about 20 µs per signature and per verification, four of them per passport hop. These two conversions let the
// passport code hand node:crypto the KeyObject itself. Pure.

const SEQUENCE = 0x30;
const INTEGER = 0x02;

/** The largest r and s whose DER SEQUENCE still has a one-byte length (2 × (2 + 1 + 60) = 126 bytes). */
const MAX_SIZE = 60;

/** r ‖ s (each `size` bytes) → DER; undefined unless `raw` is exactly 2 × size bytes (such a signature is invalid). */
export function derFromP1363(raw: Uint8Array, size: number): Buffer | undefined {
  if (size > MAX_SIZE) throw new RangeError(`ECDSA values of ${size} bytes are not supported`);
  if (raw.length !== 2 * size) return undefined;
  const r = derInteger(raw.subarray(0, size));
  const s = derInteger(raw.subarray(size));
  return Buffer.concat([Buffer.from([SEQUENCE, r.length + s.length]), r, s]);
}

/**
 * DER → r ‖ s, each left-padded to `size` bytes. For signatures node:crypto has just made: anything but
 * SEQUENCE { INTEGER, INTEGER } with short lengths and non-negative values of at most `size` bytes throws.
 */
export function p1363FromDer(der: Uint8Array, size: number): Buffer {
  if (der[0] !== SEQUENCE || der[1] !== der.length - 2) throw new Error('not a DER ECDSA signature');
  const out = Buffer.alloc(2 * size);
  let offset = 2;
  for (let i = 0; i < 2; i++) {
    const length = der[offset + 1] ?? 0;
    if (der[offset] !== INTEGER || length === 0 || offset + 2 + length > der.length) {
      throw new Error('not a DER ECDSA signature');
    }
    let value = der.subarray(offset + 2, offset + 2 + length);
    if ((value[0] as number) & 0x80) throw new Error('negative ECDSA signature value');
    if (value.length > 1 && value[0] === 0) value = value.subarray(1);
    if (value.length > size) throw new Error('ECDSA signature value too long');
    out.set(value, (i + 1) * size - value.length);
    offset += 2 + length;
  }
  if (offset !== der.length) throw new Error('not a DER ECDSA signature');
  return out;
}

/** A non-negative big-endian integer as a minimal DER INTEGER. */
function derInteger(bytes: Uint8Array): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const value = bytes.subarray(start);
  const pad = (value[0] as number) & 0x80 ? 1 : 0;
  const out = Buffer.alloc(2 + pad + value.length);
  out[0] = INTEGER;
  out[1] = pad + value.length;
  out.set(value, 2 + pad);
  return out;
}
