// The strict DER reader of the CA's hot path: anything not minimally encoded, indefinite or overrunning is "not
// understood" (undefined), so the caller falls back to the general parser.
import { describe, expect, it } from 'vitest';
import { derChildren, derOid, derTlv, derWellFormed, readDer } from '../../../src/pki/der.js';

const bytes = (hex: string) => Buffer.from(hex.replace(/\s/g, ''), 'hex');

describe('readDer', () => {
  it.each([
    ['ok/short form', '0403 010203', { tag: 0x04, contentStart: 2, end: 5 }],
    ['ok/long form, one length octet', `0481 80 ${'00'.repeat(128)}`, { tag: 0x04, contentStart: 3, end: 131 }],
    ['fail/indefinite length (BER)', '3080 0000', undefined],
    ['fail/long form for a short length (not minimal)', '0481 03 010203', undefined],
    ['fail/leading zero length octet (not minimal)', `0482 0080 ${'00'.repeat(128)}`, undefined],
    ['fail/content runs past the end', '0405 0102', undefined],
    ['fail/high tag number form', '1f01 00', undefined],
    ['fail/truncated header', '04', undefined],
  ])('%s', (_name, hex, expected) => {
    const element = readDer(bytes(hex), 0);
    if (expected === undefined) expect(element).toBeUndefined();
    else expect(element).toMatchObject(expected);
  });
});

describe('derWellFormed / derChildren', () => {
  it.each([
    ['ok/nested sequences', '3006 3004 0402 0102', true],
    ['fail/child overruns its parent', '3004 0405 0102 0304', false],
    ['fail/trailing half element inside the parent', '3004 0401 01 05', false],
  ])('%s', (_name, hex, ok) => {
    const der = bytes(hex);
    const outer = readDer(der, 0);
    expect(outer !== undefined && derWellFormed(der, outer)).toBe(ok);
  });

  it('ok/children exactly fill the parent', () => {
    const der = bytes('3006 0201 01 0201 02');
    const outer = readDer(der, 0);
    expect(outer && derChildren(der, outer)?.map((c) => c.tag)).toEqual([0x02, 0x02]);
  });
});

describe('derOid', () => {
  it.each([
    ['ok/ecdsa-with-SHA256', '0608 2a8648ce3d040302', '1.2.840.10045.4.3.2'],
    ['ok/Ed25519', '0603 2b6570', '1.3.101.112'],
    ['fail/non-minimal arc (leading 0x80)', '0604 2a808601', undefined],
    ['fail/last octet has the continuation bit', '0602 2a86', undefined],
    ['fail/empty', '0600', undefined],
  ])('%s', (_name, hex, expected) => {
    const der = bytes(hex);
    const element = readDer(der, 0);
    expect(element && derOid(der, element)).toBe(expected);
  });
});

describe('derTlv', () => {
  it.each([
    ['ok/short length', 3, '0403'],
    ['ok/one length octet', 200, '0481c8'],
    ['ok/two length octets', 300, '0482012c'],
  ])('%s', (_name, length, header) => {
    const encoded = derTlv(0x04, Buffer.alloc(length));
    expect(encoded.subarray(0, header.length / 2).toString('hex')).toBe(header);
    expect(readDer(encoded, 0)?.end).toBe(encoded.length);
  });
});
