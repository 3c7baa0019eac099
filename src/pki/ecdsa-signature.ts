// ECDSA signatures in a JWS are r ‖ s, `size` bytes each; OpenSSL signs and verifies the DER
// ECDSA-Sig-Value (SEQUENCE of two INTEGERs). node:crypto converts when handed `{ key, dsaEncoding: 'ieee-p1363' }`,
// but on Node 24 an options object in place of a KeyObject costs two internal exceptions before the key is found:
// about 20 µs per signature and per verification, three of them per passport hop. These two conversions let the
// passport code hand node:crypto the KeyObject itself. Pure.
import { derChildren, derContent, derTlv, derUnsignedInteger, readDer } from './der.js';

const SEQUENCE = 0x30;
const INTEGER = 0x02;

/** r ‖ s (each `size` bytes) → DER; undefined unless `raw` is exactly 2 × size bytes (such a signature is invalid). */
export function derFromP1363(raw: Uint8Array, size: number): Buffer | undefined {
  if (raw.length !== 2 * size) return undefined;
  return derTlv(SEQUENCE, derUnsignedInteger(raw.subarray(0, size)), derUnsignedInteger(raw.subarray(size)));
}

/**
 * DER → r ‖ s, each left-padded to `size` bytes. For signatures node:crypto has just made: anything but strict DER
 * SEQUENCE { INTEGER, INTEGER } with non-negative values of at most `size` bytes throws.
 */
export function p1363FromDer(der: Uint8Array, size: number): Buffer {
  const sequence = readDer(der, 0);
  const values = sequence?.tag === SEQUENCE && sequence.end === der.length ? derChildren(der, sequence) : undefined;
  if (values?.length !== 2 || values.some((value) => value.tag !== INTEGER || value.end === value.contentStart)) {
    throw new Error('not a DER ECDSA signature');
  }
  const out = Buffer.alloc(2 * size);
  values.forEach((element, i) => {
    let value = derContent(der, element);
    if ((value[0] as number) & 0x80) throw new Error('negative ECDSA signature value');
    if (value.length > 1 && value[0] === 0) value = value.subarray(1);
    if (value.length > size) throw new Error('ECDSA signature value too long');
    value.copy(out, (i + 1) * size - value.length);
  });
  return out;
}
