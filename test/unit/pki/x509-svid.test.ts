// X509Svid built two ways: from parsed certificates, and from a leaf validated as DER (parsed only when asked).
// Both must read the same to every holder: chain PEM, validity window, serial number, intermediates, certificates.
import { beforeAll, describe, expect, it } from 'vitest';
import { SpiffeId } from '../../../src/identity/index.js';
import { validateX509SvidLeafDer, X509Svid } from '../../../src/pki/index.js';
import { certificateSerialHex } from '../../../src/pki/leaf-der.js';
import { tlv } from '../../helpers/der-writer.js';
import { TestCa, type TestSvid } from '../../helpers/test-ca.js';

const ID = 'spiffe://example.org/ns/a/sa/b';
let ca: TestCa;

beforeAll(async () => {
  ca = await TestCa.create('example.org');
});

function bothWays(issued: TestSvid): [X509Svid, X509Svid] {
  const common = { id: SpiffeId.parse(issued.id), privateKeyPem: issued.keyPem, keyType: 'p256' as const };
  const parsed = new X509Svid({ ...common, certificates: [issued.leaf, ca.intermediate] });
  const leafDer = new Uint8Array(issued.leaf.rawData);
  const validated = validateX509SvidLeafDer(leafDer, [ca.intermediate], ca.bundle, new Date());
  expect(validated.id.toString()).toBe(issued.id);
  const lazy = new X509Svid({ ...common, leafDer, ...validated, intermediates: [ca.intermediate] });
  return [parsed, lazy];
}

describe('X509Svid from a validated leaf DER', () => {
  it('ok/reads the same as one built from parsed certificates', async () => {
    const [parsed, lazy] = bothWays(await ca.issue({ id: ID }));
    expect(lazy.certChainPem).toBe(parsed.certChainPem);
    expect(lazy.notBefore.getTime()).toBe(parsed.notBefore.getTime());
    expect(lazy.notAfter.getTime()).toBe(parsed.notAfter.getTime());
    expect(lazy.serialNumber).toBe(parsed.serialNumber);
    expect(lazy.intermediates.map((c) => c.serialNumber)).toEqual(parsed.intermediates.map((c) => c.serialNumber));
    expect(Buffer.from(lazy.leafDer).equals(Buffer.from(parsed.leafDer))).toBe(true);
    // Parsed on first use, then the same object every time.
    expect(lazy.certificates.map((c) => c.serialNumber)).toEqual(parsed.certificates.map((c) => c.serialNumber));
    expect(lazy.leaf).toBe(lazy.certificates[0]);
    expect(lazy.serialNumber).toBe(parsed.leaf.serialNumber);
  });

  it('ok/the serial number matches @peculiar/x509 for many issued leaves', async () => {
    for (let i = 0; i < 40; i++) {
      const issued = await ca.issue({ id: ID, defects: {} });
      expect(certificateSerialHex(new Uint8Array(issued.leaf.rawData))).toBe(issued.leaf.serialNumber);
    }
  });

  // meshauth's own serials never start with a high byte (serial.ts clears the sign bit), so the 00 that another CA
  // puts before one is checked on written DER: a v3 TBSCertificate cut after its serial number.
  it.each([
    ['a high first byte: the sign-keeping 00 is dropped', [0x00, 0xff, 0x01], 'ff01'],
    ['a low first byte: kept as it is', [0x7f, 0x01], '7f01'],
    ['a single zero byte', [0x00], '00'],
  ])('ok/%s', (_name, serial, hex) => {
    const tbs = tlv(0x30, [Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]), tlv(0x02, Buffer.from(serial))]);
    expect(certificateSerialHex(new Uint8Array(tlv(0x30, [tbs])))).toBe(hex);
  });

  it.each([
    ['not DER', [0x30, 0x00]],
    ['a serial that is not an INTEGER', [0x30, 0x0a, 0x30, 0x08, 0xa0, 0x03, 0x02, 0x01, 0x02, 0x04, 0x01, 0x01]],
  ])('fail/%s → empty', (_name, der) => {
    expect(certificateSerialHex(new Uint8Array(der))).toBe('');
  });
});
