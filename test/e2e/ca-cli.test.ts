// `meshauth ca init|issue|token create` through the built CLI: files, modes, exit codes.
// Each case mostly waits for the processes it starts; the `ca init` and `ca issue` cases run side by side (each writes
// its own paths, and the CA files they share are only read), taking `expect` from their context. `ca token create`
// comes after them, alone: a run that waits for another's CA directory lock says so on stderr, which it checks.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, meshauth } from '../helpers/meshauth-cli.js';

/** Files under `dir` whose bytes contain `needle`. A file that goes away during the walk (another command's
 *  temporary file, renamed into place) holds nothing: `grep -r` exits 2 on it, which is why this is not grep. */
function filesContaining(dir: string, needle: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    try {
      if (readFileSync(path).includes(needle)) found.push(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return found;
}

let cwd: string;

beforeAll(async () => {
  assertBuilt();
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-ca-'));
  const init = await meshauth(['ca', 'init', '--trust-domain', 'example.org'], { cwd });
  expect(init.code, init.stderr).toBe(0);
  // The PKCS#12 password of every `--p12` case, written once: cases running side by side never see it half-written.
  writeFileSync(join(cwd, 'p12pass'), 'correct horse\n');
});
afterAll(() => {
  if (cwd !== undefined) rmSync(cwd, { recursive: true, force: true });
});

describe.concurrent('ca init', () => {
  it('ok/writes the SPEC §4 files, keys 0600', ({ expect }) => {
    for (const file of ['root.crt', 'intermediate.crt', 'bundle.pem']) {
      expect(readFileSync(join(cwd, 'certs', file), 'utf8')).toContain('BEGIN CERTIFICATE');
    }
    for (const key of ['root.key', 'intermediate.key']) {
      expect(statSync(join(cwd, 'certs', key)).mode & 0o777).toBe(0o600);
    }
  });

  it('fail/init twice without --force → exit 2 and a clear message; nothing replaced', async ({ expect }) => {
    const before = readFileSync(join(cwd, 'certs', 'root.crt'), 'utf8');
    const again = await meshauth(['ca', 'init', '--trust-domain', 'example.org'], { cwd });
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists.*--force/);
    expect(again.stderr).toContain('MESHAUTH_ERR_CA_EXISTS');
    expect(readFileSync(join(cwd, 'certs', 'root.crt'), 'utf8')).toBe(before);
  });

  it('ok/--force replaces the CA (in another --dir)', async ({ expect }) => {
    const first = await meshauth(['ca', 'init', '--trust-domain', 'other.org', '--dir', 'other'], { cwd });
    expect(first.code).toBe(0);
    const before = readFileSync(join(cwd, 'other', 'root.crt'), 'utf8');
    const forced = await meshauth(['ca', 'init', '--trust-domain', 'other.org', '--dir', 'other', '--force'], { cwd });
    expect(forced.code, forced.stderr).toBe(0);
    expect(readFileSync(join(cwd, 'other', 'root.crt'), 'utf8')).not.toBe(before);
  });

  it('fail/bad trust domain → exit 2', async ({ expect }) => {
    const result = await meshauth(['ca', 'init', '--trust-domain', 'Example.ORG', '--dir', 'bad'], { cwd });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('MESHAUTH_ERR_TRUST_DOMAIN_INVALID');
  });
});

describe.concurrent('ca issue', () => {
  it.for<[string, string[], string]>([
    ['fail/malformed ID', ['--id', 'spiffe://example.org/a//b'], 'MESHAUTH_ERR_SPIFFE_ID_INVALID'],
    ['fail/ID of another trust domain', ['--id', 'spiffe://evil.org/ns/a/sa/b'], 'MESHAUTH_ERR_SPIFFE_ID_INVALID'],
    ['fail/trust-domain ID without a path', ['--id', 'spiffe://example.org'], 'MESHAUTH_ERR_SPIFFE_ID_INVALID'],
    // Agents accept the CA by this ID alone: its holder could pose as the CA.
    ["fail/the CA's own ID", ['--id', 'spiffe://example.org/meshauth/ca'], 'MESHAUTH_ERR_SPIFFE_ID_INVALID'],
    ['fail/ttl 25h', ['--id', 'spiffe://example.org/ns/a/sa/b', '--ttl', '25h'], 'MESHAUTH_ERR_TTL_OUT_OF_RANGE'],
    ['fail/ttl 30s', ['--id', 'spiffe://example.org/ns/a/sa/b', '--ttl', '30s'], 'MESHAUTH_ERR_TTL_OUT_OF_RANGE'],
    ['fail/ttl garbage', ['--id', 'spiffe://example.org/ns/a/sa/b', '--ttl', 'soon'], 'MESHAUTH_ERR_USAGE'],
    [
      'fail/unknown key type',
      ['--id', 'spiffe://example.org/ns/a/sa/b', '--key-type', 'p384'],
      'MESHAUTH_ERR_KEY_TYPE',
    ],
    ['fail/--p12 without a password file', ['--id', 'spiffe://example.org/ns/a/sa/b', '--p12'], 'MESHAUTH_ERR_USAGE'],
    // Ignored, it let a run that was meant to write PREFIX.p12 exit 0 without one.
    [
      'fail/--p12-password-file without --p12',
      ['--id', 'spiffe://example.org/ns/a/sa/b', '--p12-password-file', 'ca-cli-p12pass'],
      '--p12-password-file goes with --p12',
    ],
  ])('%s → exit 2', async ([_name, args, code], { expect }) => {
    const result = await meshauth(['ca', 'issue', ...args, '--out', 'never/x'], { cwd });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(code);
    expect(() => statSync(join(cwd, 'never'))).toThrow();
  });

  it('fail/no CA in --dir → exit 2 naming `ca init`', async ({ expect }) => {
    const result = await meshauth(['ca', 'issue', '--id', 'spiffe://example.org/a', '--dir', 'nowhere'], { cwd });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('meshauth ca init');
    expect(result.stderr).toContain('MESHAUTH_ERR_CA_NOT_INITIALIZED');
  });

  /** `ca issue` of a JVM service's SVID as PREFIX.crt, PREFIX.key and PREFIX.p12 (password file `p12pass`). */
  const issueP12 = (prefix: string, keyType: string, ...extra: string[]) =>
    meshauth(
      [
        'ca',
        'issue',
        '--id',
        'spiffe://example.org/ns/pay/sa/java',
        ...extra,
        '--out',
        prefix,
        '--key-type',
        keyType,
        '--p12',
        '--p12-password-file',
        'p12pass',
      ],
      { cwd },
    );

  it.for(['p256', 'ed25519', 'rsa2048'])(
    'ok/issues PREFIX.crt + PREFIX.key + PREFIX.p12 (%s)',
    async (keyType, { expect }) => {
      const prefix = `out/${keyType}`;
      const result = await issueP12(prefix, keyType, '--ttl', '2h');
      expect(result.code, result.stderr).toBe(0);
      expect(statSync(join(cwd, `${prefix}.key`)).mode & 0o777).toBe(0o600);
      const chain = readFileSync(join(cwd, `${prefix}.crt`), 'utf8');
      expect(chain.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
      const verify = spawnSync(
        'openssl',
        [
          'verify',
          '-x509_strict',
          '-purpose',
          'sslclient',
          '-CAfile',
          'certs/root.crt',
          '-untrusted',
          'certs/intermediate.crt',
          `${prefix}.crt`,
        ],
        { cwd, encoding: 'utf8' },
      );
      expect(verify.stdout + verify.stderr).toContain(': OK');
      // Stock OpenSSL 3 reads the PKCS#12 without -legacy: the certificates, then the key.
      const certs = execFileSync(
        'openssl',
        ['pkcs12', '-info', '-in', `${prefix}.p12`, '-nokeys', '-passin', 'file:p12pass'],
        { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      );
      expect(certs.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
      const info = spawnSync(
        'openssl',
        ['pkcs12', '-info', '-in', `${prefix}.p12`, '-nodes', '-passin', 'file:p12pass'],
        { cwd, encoding: 'utf8' },
      );
      expect(info.status, info.stderr).toBe(0);
      expect(info.stderr).toContain('PBES2, PBKDF2, AES-256-CBC');
      expect(info.stderr).toMatch(/MAC: sha256/);
      expect(info.stdout).toContain('BEGIN PRIVATE KEY');
      const wrong = spawnSync(
        'openssl',
        ['pkcs12', '-info', '-in', `${prefix}.p12`, '-nodes', '-passin', 'pass:wrong'],
        {
          cwd,
          encoding: 'utf8',
        },
      );
      expect(wrong.status).not.toBe(0);
    },
  );

  it('ok/a JVM keystore accepts the PKCS#12 (keytool -list), every key type', async (context) => {
    const { expect } = context;
    const keytool = spawnSync('keytool', ['-help'], { encoding: 'utf8' });
    if (keytool.error !== undefined) {
      console.info('skipped: keytool (Java) is not installed');
      context.skip();
    }
    // The key types side by side, each a `ca issue` and a JVM start.
    const keytoolList = (prefix: string) =>
      new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          'keytool',
          ['-list', '-storetype', 'PKCS12', '-keystore', `${prefix}.p12`, '-storepass', 'correct horse'],
          { cwd, encoding: 'utf8', timeout: 30_000 },
          (error, stdout, stderr) =>
            resolve({ status: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr }),
        );
      });
    await Promise.all(
      ['p256', 'ed25519', 'rsa2048'].map(async (keyType) => {
        const prefix = `jvm/${keyType}`;
        const issued = await issueP12(prefix, keyType);
        expect(issued.code, issued.stderr).toBe(0);
        const list = await keytoolList(prefix);
        expect(list.status, `${keyType}: ${list.stdout}${list.stderr}`).toBe(0);
        expect(list.stdout).toContain('PrivateKeyEntry');
      }),
    );
  });
});

describe('ca token create', () => {
  it('ok/prints only the token (base64url, 256 bits) and stores only its hash', async () => {
    const result = await meshauth(['ca', 'token', 'create', '--id', 'spiffe://example.org/ns/a/sa/b'], { cwd });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^[A-Za-z0-9_-]{43}\n$/);
    expect(result.stderr).toBe('');
    const token = result.stdout.trim();
    expect(filesContaining(join(cwd, 'certs'), token)).toEqual([]);
    const hash = createHash('sha256').update(token).digest('hex');
    expect(JSON.parse(readFileSync(join(cwd, 'certs', 'tokens', `${hash}.json`), 'utf8'))).toMatchObject({
      id: 'spiffe://example.org/ns/a/sa/b',
    });
  });

  // Refused before the CA directory is touched: these run side by side, after the case above.
  it.concurrent.for<[string, string[]]>([
    ['fail/bad ID', ['--id', 'spiffe://example.org/ns/../x']],
    ['fail/ID of another trust domain', ['--id', 'spiffe://evil.org/ns/a/sa/b']],
    ['fail/ttl too long', ['--id', 'spiffe://example.org/ns/a/sa/b', '--ttl', '30d']],
  ])('%s → exit 2, nothing on stdout', async ([_name, args], { expect }) => {
    const result = await meshauth(['ca', 'token', 'create', ...args], { cwd });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
  });
});
