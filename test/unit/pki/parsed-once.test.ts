import { describe, expect, it } from 'vitest';
import { MeshauthError } from '../../../src/errors/index.js';
import { parseCertificateDerOnce, parseCertificatesPemOnce } from '../../../src/pki/index.js';
import { TestCa } from '../../helpers/test-ca.js';

describe('certificates parsed once', () => {
  it('ok/the same DER gives the same object; other DER another', async () => {
    const ca = await TestCa.create('example.org');
    const a = (await ca.issue({ id: ca.idFor('/a') })).leaf;
    const b = (await ca.issue({ id: ca.idFor('/b') })).leaf;
    const der = new Uint8Array(a.rawData);
    const first = parseCertificateDerOnce(der);
    expect(parseCertificateDerOnce(new Uint8Array(a.rawData))).toBe(first);
    expect(parseCertificateDerOnce(new Uint8Array(b.rawData))).not.toBe(first);
    expect(first.serialNumber).toBe(a.serialNumber);
  });

  it('ok/the same PEM gives the same objects in a fresh array the caller may change', async () => {
    const ca = await TestCa.create('example.org');
    const first = parseCertificatesPemOnce(ca.bundlePem);
    first.pop();
    const again = parseCertificatesPemOnce(ca.bundlePem);
    expect(again).toHaveLength(1);
    expect(again[0]?.serialNumber).toBe(ca.bundle.roots[0]?.serialNumber);
  });

  it('fail/bytes that are no certificate throw the usual MESHAUTH_ERR_SVID_MALFORMED, every time', () => {
    for (let i = 0; i < 2; i++) {
      expect(() => parseCertificateDerOnce(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01]))).toThrow(MeshauthError);
      expect(() => parseCertificatesPemOnce('no pem here')).toThrow(/no PEM certificate found/);
    }
  });
});
