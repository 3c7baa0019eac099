// X509Svid built two ways: from parsed certificates, and from a leaf validated as DER (parsed only when asked).
// Both must read the same to every holder: chain PEM, validity window, serial number, intermediates, certificates.
import { beforeAll, describe, expect, it } from 'vitest';
import { SpiffeId } from '../../../src/identity/index.js';
import { validateX509SvidLeafDer, X509Svid } from '../../../src/pki/index.js';
import { certificateSerialHex } from '../../../src/pki/leaf-der.js';
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

  it('ok/the serial number matches @peculiar/x509 for many leaves (high first bytes included)', async () => {
    for (let i = 0; i < 40; i++) {
      const issued = await ca.issue({ id: ID, defects: {} });
      expect(certificateSerialHex(new Uint8Array(issued.leaf.rawData))).toBe(issued.leaf.serialNumber);
    }
    expect(certificateSerialHex(new Uint8Array([0x30, 0x00]))).toBe('');
  });
});
