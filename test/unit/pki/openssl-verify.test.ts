// Our certificates checked by OpenSSL itself, the path validator of the TLS stack: every issued leaf passes
// `openssl verify -x509_strict -purpose sslclient`, carries the X509-SVID extensions (critical URI SAN, CA:FALSE, key
// usage, both TLS EKUs, key identifiers), and a leaf of another trust domain signed by our intermediate fails on the
// intermediate's name constraints.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCa } from '../../helpers/test-ca.js';

let ca: TestCa;
let dir: string;
let cleanup: () => void;

beforeAll(async () => {
  ca = await TestCa.create('example.org');
  ({ dir, cleanup } = ca.writeFiles());
});
afterAll(() => cleanup?.());

function openssl(...args: string[]): { status: number | null; out: string } {
  const result = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (result.error !== undefined) throw new Error(`openssl is required for this test: ${result.error.message}`);
  return { status: result.status, out: `${result.stdout}${result.stderr}` };
}

describe('openssl verify', () => {
  it.each(['p256', 'ed25519', 'rsa2048'] as const)(
    'ok/%s leaf verifies as an SSL client and server',
    async (keyType) => {
      const svid = await ca.issue({ keyType, id: ca.idFor(`/ns/shop/sa/${keyType}`) });
      writeFileSync(join(dir, `${keyType}.pem`), svid.certPem);
      for (const purpose of ['sslclient', 'sslserver']) {
        const verify = openssl(
          'verify',
          '-x509_strict',
          '-purpose',
          purpose,
          '-CAfile',
          'root.crt',
          '-untrusted',
          'intermediate.crt',
          `${keyType}.pem`,
        );
        expect(verify.out).toContain(`${keyType}.pem: OK`);
        expect(verify.status).toBe(0);
      }
      const text = openssl('x509', '-in', `${keyType}.pem`, '-noout', '-text').out;
      expect(text).toMatch(/Subject: *\n/); // empty subject (X509-SVID §3.1)
      expect(text).toMatch(
        /X509v3 Subject Alternative Name: critical\s+URI:spiffe:\/\/example\.org\/ns\/shop\/sa\/\w+\s*\n/,
      );
      expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
      const usage = keyType === 'rsa2048' ? 'Digital Signature, Key Encipherment' : 'Digital Signature';
      expect(text).toMatch(new RegExp(`X509v3 Key Usage: critical\\s+${usage}\\s*\\n`));
      expect(text).toMatch(/X509v3 Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/);
      expect(text).toContain('X509v3 Subject Key Identifier');
      expect(text).toContain('X509v3 Authority Key Identifier');
      expect(text).toMatch(/Serial Number:\s+(?:[0-9a-f]{2}:){15}[0-9a-f]{2}/); // 128-bit serial
      expect(text).toContain('Signature Algorithm: ecdsa-with-SHA256'); // signed by the P-256 intermediate
      const validity = /Not Before: (.+)\n\s+Not After : (.+)\n/.exec(text);
      expect(new Date(validity?.[2] ?? '').getTime() - new Date(validity?.[1] ?? '').getTime()).toBe(
        3_600_000 + 60_000,
      );
    },
  );

  it('fail/leaf for another trust domain signed by the intermediate → permitted subtree violation', async () => {
    const svid = await ca.issue({ id: 'spiffe://evil.org/ns/shop/sa/web' });
    writeFileSync(join(dir, 'evil.pem'), svid.certPem);
    const verify = openssl(
      'verify',
      '-x509_strict',
      '-purpose',
      'sslclient',
      '-CAfile',
      'root.crt',
      '-untrusted',
      'intermediate.crt',
      'evil.pem',
    );
    expect(verify.status).not.toBe(0);
    expect(verify.out).toContain('permitted subtree violation');
  });

  it('fail/leaf of another CA → unable to get local issuer certificate', async () => {
    const other = await TestCa.create('example.org');
    writeFileSync(join(dir, 'other.pem'), (await other.issue()).certPem);
    const verify = openssl('verify', '-CAfile', 'root.crt', '-untrusted', 'intermediate.crt', 'other.pem');
    expect(verify.status).not.toBe(0);
    expect(verify.out).toContain('unable to get local issuer certificate');
  });
});
