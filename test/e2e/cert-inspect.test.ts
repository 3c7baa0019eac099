// `meshauth cert inspect` on a chain file: the leaf in full, then one line per other certificate.
import { execFileSync } from 'node:child_process';
import { createHash, subtle, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCaMaterial } from '../../src/ca/index.js';
import { SpiffeId } from '../../src/identity/index.js';
import { certificatePem, issueLeafDer } from '../../src/pki/index.js';
import { assertBuilt, meshauth } from '../helpers/meshauth-cli.js';

let cwd: string;

beforeAll(async () => {
  assertBuilt();
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-inspect-'));
  expect((await meshauth(['ca', 'init', '--trust-domain', 'example.org'], { cwd })).code).toBe(0);
  const issued = await meshauth(
    [
      'ca',
      'issue',
      '--id',
      'spiffe://example.org/ns/shop/sa/web',
      '--ttl',
      '2h',
      '--out',
      'web',
      '--key-type',
      'ed25519',
    ],
    { cwd },
  );
  expect(issued.code, issued.stderr).toBe(0);
});
afterAll(() => {
  if (cwd !== undefined) rmSync(cwd, { recursive: true, force: true });
});

describe('cert inspect', () => {
  it('ok/text: subject, SPIFFE ID, issuer, validity, time left, key type, fingerprint; one line per CA', async () => {
    const result = await meshauth(['cert', 'inspect', 'web.crt'], { cwd });
    expect(result.code, result.stderr).toBe(0);
    const leafDer = new X509Certificate(readFileSync(join(cwd, 'web.crt'))).raw;
    const fingerprint = createHash('sha256').update(leafDer).digest('hex');
    expect(result.stdout).toContain('subject:     (empty)');
    expect(result.stdout).toContain('spiffe id:   spiffe://example.org/ns/shop/sa/web');
    expect(result.stdout).toMatch(/issuer: +CN=meshauth intermediate CA/);
    // The label says "left": the value does not say it again.
    expect(result.stdout).toMatch(/^time left: +(2h 0m|1h 59m)$/m);
    expect(result.stdout).toContain('key type:    ed25519');
    expect(result.stdout).toContain(`sha256:      ${fingerprint}`);
    expect(result.stdout.split('\n').filter((l) => l.startsWith('chain['))).toHaveLength(1);
  });

  // A bundle holds roots side by side (two during a root rotation), not a chain: its further certificates are
  // labelled roots. They were labelled chain[1], as if the second root had issued the first.
  it('ok/a bundle of two roots: the second is root[1], not chain[1]', async () => {
    const other = await meshauth(['ca', 'init', '--trust-domain', 'example.org', '--dir', 'other'], { cwd });
    expect(other.code, other.stderr).toBe(0);
    const roots = [join(cwd, 'certs/bundle.pem'), join(cwd, 'other/bundle.pem')].map((f) => readFileSync(f, 'utf8'));
    writeFileSync(join(cwd, 'two-roots.pem'), roots.join(''));
    const result = await meshauth(['cert', 'inspect', 'two-roots.pem'], { cwd });
    expect(result.code, result.stderr).toBe(0);
    const secondRoot = new X509Certificate(roots[1] as string).subject.split('\n').join(', ');
    expect(result.stdout).toContain(`\nroot[1]: ${secondRoot} (issuer ${secondRoot}; `);
    expect(result.stdout).not.toContain('chain[');
    expect(result.stdout).toMatch(/^time left: +\d+d \d+h$/m);
  });

  it('fail/control characters in a name are escaped: a certificate cannot print a line of its own', async () => {
    // Found in review: an issuer holding ESC [1F … redrew the terminal into a forged `spiffe id:` line.
    execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'esc.key'], { cwd });
    const forged = `/CN=web\u001b[1F\u001b[2Kspiffe id: forged`; // -subj reads `/` as a separator
    execFileSync(
      'openssl',
      ['req', '-new', '-x509', '-key', 'esc.key', '-utf8', '-subj', forged, '-days', '1', '-out', 'esc.crt'],
      {
        cwd,
      },
    );
    const result = await meshauth(['cert', 'inspect', 'esc.crt'], { cwd });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).not.toContain('\u001b');
    expect(result.stdout).toContain('CN=web\\x1b[1F\\x1b[2Kspiffe id: forged');
    expect(result.stdout).toContain('spiffe id:   (none)');
  });

  it('fail/not a certificate → exit 2', async () => {
    const result = await meshauth(['cert', 'inspect', 'certs/ca.json'], { cwd });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('MESHAUTH_ERR_SVID_MALFORMED');
    expect(result.stderr).toContain('certs/ca.json: ');
  });

  // A leaf whose key is the EC point at infinity (built here with the CA's own signer): Node 20 aborted the CLI
  // with a native assertion reading the key's details.
  it('ok/a leaf whose key is the EC point at infinity: described, key type invalid', async () => {
    const material = await loadCaMaterial(join(cwd, 'certs'));
    const infinity = Buffer.from('3019301306072a8648ce3d020106082a8648ce3d03010703020000', 'hex');
    const signed = await issueLeafDer({
      id: SpiffeId.parse('spiffe://example.org/ns/shop/sa/odd'),
      publicKey: infinity,
      issuer: material.issuer,
      now: new Date(),
      ttlMs: 3_600_000,
    });
    writeFileSync(join(cwd, 'odd.crt'), certificatePem(signed.der));
    const result = await meshauth(['cert', 'inspect', 'odd.crt'], { cwd });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('spiffe id:   spiffe://example.org/ns/shop/sa/odd');
    expect(result.stdout).toContain('key type:    invalid');
  });

  // JSON is read by scripts: timeLeft is a value ("1h 59m", or "expired"), not the sentence "1h 59m left" it was, and
  // secondsLeft is a number to compare (negative once expired).
  it('ok/--json: timeLeft is the duration alone, secondsLeft whole seconds until NotAfter', async () => {
    const result = await meshauth(['cert', 'inspect', '--json', 'web.crt'], { cwd });
    expect(result.code, result.stderr).toBe(0);
    const [leaf] = (JSON.parse(result.stdout) as { certificates: Record<string, unknown>[] }).certificates;
    expect(leaf?.timeLeft).toMatch(/^(2h 0m|1h 59m)$/);
    expect(Number.isInteger(leaf?.secondsLeft)).toBe(true);
    // Bounded by the certificate alone (2 h), not by how long the command took.
    expect(leaf?.secondsLeft).toBeGreaterThan(0);
    expect(leaf?.secondsLeft).toBeLessThanOrEqual(7200);
    expect(leaf?.expired).toBe(false);
  });

  it('ok/--json on an expired certificate: timeLeft "expired", secondsLeft negative; text says "expired"', async () => {
    const material = await loadCaMaterial(join(cwd, 'certs'));
    const leafKey = await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
    const signed = await issueLeafDer({
      id: SpiffeId.parse('spiffe://example.org/ns/shop/sa/old'),
      publicKey: Buffer.from(await subtle.exportKey('spki', leafKey.publicKey)),
      issuer: material.issuer,
      now: new Date(Date.now() - 3 * 3_600_000),
      ttlMs: 3_600_000,
    });
    writeFileSync(join(cwd, 'old.crt'), certificatePem(signed.der));
    const json = await meshauth(['cert', 'inspect', '--json', 'old.crt'], { cwd });
    expect(json.code, json.stderr).toBe(0);
    const [leaf] = (JSON.parse(json.stdout) as { certificates: Record<string, unknown>[] }).certificates;
    expect(leaf).toMatchObject({ timeLeft: 'expired', expired: true });
    expect(Number.isInteger(leaf?.secondsLeft)).toBe(true);
    expect(leaf?.secondsLeft).toBeLessThan(-3600);
    const text = await meshauth(['cert', 'inspect', 'old.crt'], { cwd });
    expect(text.stdout).toMatch(/^time left: +expired$/m);
  });

  it('fail/missing file → exit 2', async () => {
    expect((await meshauth(['cert', 'inspect', 'nope.crt'], { cwd })).code).toBe(2);
  });
});
