// A key and chain in one file (haproxy's `crt`, ghostunnel's `--keystore`, stunnel's `cert`) renewed in place with
// `cert renew --cert web.pem --key web.pem`: a reader re-reading that file while renewals run (a real process) always
// finds a key and the leaf it belongs to. The file used to be written as two files at one path: the chain replaced
// the key, success was reported, and the next renewal could not even read a key.
import { type ChildProcess, spawn } from 'node:child_process';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, meshauth, type RunningCli, serveCa } from '../helpers/meshauth-cli.js';
import { waitFor } from '../helpers/wait.js';

const ID = 'spiffe://example.org/ns/shop/sa/web';
let cwd: string;
let serve: RunningCli;
let url: string;
const children: ChildProcess[] = [];

// Reads FILE in a loop until STOP exists (bounded): each read must hold a private key that is the first
// certificate's. Prints "ready" after its first read, and its counts as JSON when it stops.
const READER = `
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
const [file, stop] = process.argv.slice(-2);
let reads = 0;
const bad = [];
for (let i = 0; i < 5_000_000 && !existsSync(stop); i++) {
  const text = readFileSync(file, 'utf8');
  reads++;
  try {
    const key = createPublicKey(createPrivateKey(text)).export({ type: 'spki', format: 'der' });
    const leaf = new X509Certificate(text).publicKey.export({ type: 'spki', format: 'der' });
    if (!key.equals(leaf)) bad.push('the key is not the leaf key');
  } catch (error) {
    bad.push(error.message);
  }
  if (reads === 1) process.stdout.write('ready\\n');
}
process.stdout.write(JSON.stringify({ reads, bad: bad.slice(0, 5), badCount: bad.length }) + '\\n');
`;

function keyMatchesLeaf(text: string): boolean {
  const key = createPublicKey(createPrivateKey(text)).export({ type: 'spki', format: 'der' });
  return key.equals(new X509Certificate(text).publicKey.export({ type: 'spki', format: 'der' }));
}

async function requestCombined(name: string): Promise<string> {
  const token = await meshauth(['ca', 'token', 'create', '--id', ID], { cwd });
  expect(token.code, token.stderr).toBe(0);
  const args = ['cert', 'request', '--ca-url', url, '--bundle', 'certs/bundle.pem', '--token', token.stdout.trim()];
  const result = await meshauth([...args, '--out', name], { cwd });
  expect(result.code, result.stderr).toBe(0);
  const pem = `${name}.pem`;
  writeFileSync(
    join(cwd, pem),
    readFileSync(join(cwd, `${name}.crt`), 'utf8') + readFileSync(join(cwd, `${name}.key`), 'utf8'),
    { mode: 0o600 },
  );
  return pem;
}

const renew = (cert: string, key: string) =>
  meshauth(['cert', 'renew', '--ca-url', url, '--bundle', 'certs/bundle.pem', '--cert', cert, '--key', key], { cwd });

beforeAll(async () => {
  assertBuilt(['src/cli', 'src/ca', 'src/agent']);
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-combined-'));
  expect((await meshauth(['ca', 'init', '--trust-domain', 'example.org'], { cwd })).code).toBe(0);
  ({ serve, url } = await serveCa(cwd));
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid);
  await serve?.stop();
  if (cwd !== undefined) rmSync(cwd, { recursive: true, force: true });
});

describe('cert renew of a combined key-and-chain file', () => {
  it('ok/a reader racing three renewals always reads a key with its own leaf', async () => {
    const pem = await requestCombined('web');
    const stop = join(cwd, 'stop-reader');
    const reader = spawn(process.execPath, ['--input-type=module', '-e', READER, join(cwd, pem), stop], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(reader);
    let out = '';
    reader.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    const exited = new Promise<void>((done) => reader.once('exit', () => done()));
    await waitFor('the reader to read once', () => out.startsWith('ready\n'), 15_000);

    const before = readFileSync(join(cwd, pem), 'utf8');
    const stdouts: string[] = [];
    for (let round = 0; round < 3; round++) {
      const result = await renew(pem, pem);
      expect(result.code, result.stderr).toBe(0);
      stdouts.push(result.stdout);
    }
    writeFileSync(stop, '');
    await exited;
    const counts = JSON.parse(out.split('\n')[1] ?? '') as { reads: number; bad: string[]; badCount: number };
    expect(counts.bad).toEqual([]);
    expect(counts.reads).toBeGreaterThan(1);

    const after = readFileSync(join(cwd, pem), 'utf8');
    expect(after).not.toBe(before);
    expect(keyMatchesLeaf(after)).toBe(true);
    expect(statSync(join(cwd, pem)).mode & 0o777).toBe(0o600);
    for (const stdout of stdouts) {
      expect(stdout).toMatch(new RegExp(`^issued ${ID} \\(p256, expires .*\\): web\\.pem\\n$`));
    }
  });

  it('fail/--key a symlink to the --cert file → exit 2 MESHAUTH_ERR_USAGE, nothing replaced', async () => {
    const pem = await requestCombined('linked');
    symlinkSync(pem, join(cwd, 'linked-key.pem'));
    const before = readFileSync(join(cwd, pem), 'utf8');
    const result = await renew(pem, 'linked-key.pem');
    expect(result.stderr).toBe(
      'meshauth: --cert linked.pem and --key linked-key.pem are one file by two names: give the same path to both to renew a combined key and chain in place [MESHAUTH_ERR_USAGE]\n',
    );
    expect(result.code).toBe(2);
    expect(readFileSync(join(cwd, pem), 'utf8')).toBe(before);
  });
});
