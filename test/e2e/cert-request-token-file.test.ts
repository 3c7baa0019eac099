// `meshauth cert request` took the one-time join token only as `--token <token>`: while the request runs, every
// local user reads it in /proc/<pid>/cmdline (ps), it lands in shell history, and whoever redeems it first gets the
// SVID for its identity. `ca issue` already refuses a PKCS#12 password on the command line for this reason.
// `--token-file FILE` reads it the way the sidecar reads ca.token (bounded regular file, trimmed, never quoted).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, MAIN, meshauth, type RunningCli, serveCa } from '../helpers/meshauth-cli.js';
import { waitFor } from '../helpers/wait.js';

const ID = 'spiffe://example.org/ns/shop/sa/batch';
let cwd: string;
let serve: RunningCli;
let url: string;

beforeAll(async () => {
  assertBuilt(['src/ca', 'src/cli', 'src/agent']);
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-token-file-'));
  expect((await meshauth(['ca', 'init', '--trust-domain', 'example.org'], { cwd })).code).toBe(0);
  ({ serve, url } = await serveCa(cwd));
});
afterAll(async () => {
  await serve?.stop();
  if (cwd !== undefined) rmSync(cwd, { recursive: true, force: true });
});

async function tokenFile(name: string): Promise<{ file: string; token: string }> {
  const created = await meshauth(['ca', 'token', 'create', '--id', ID], { cwd });
  expect(created.code, created.stderr).toBe(0);
  const token = created.stdout.trim();
  const file = join(cwd, name);
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return { file, token };
}

describe('cert request --token-file', () => {
  it('ok/issues with the token read from a file; the token never appears on the command line', async () => {
    const { file, token } = await tokenFile('join.token');
    const args = ['cert', 'request', '--ca-url', url, '--bundle', 'certs/bundle.pem', '--token-file', file];
    expect(args.join(' ')).not.toContain(token);
    const request = await meshauth([...args, '--out', 'wl/batch'], { cwd });
    expect(request.code, request.stderr).toBe(0);
    expect(request.stdout).toContain(`issued ${ID}`);
    expect(statSync(join(cwd, 'wl/batch.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(cwd, 'wl/batch.crt'), 'utf8')).toContain('BEGIN CERTIFICATE');
  });

  it('ok/while the request waits on the CA, /proc/<pid>/cmdline holds the file name, not the token', async () => {
    const { file, token } = await tokenFile('slow.token');
    // A "CA" that accepts the connection and never answers: the request stays in flight while we look.
    const sockets: Socket[] = [];
    const silent: Server = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    const child = spawn(
      process.execPath,
      [MAIN, 'cert', 'request', '--ca-url', `https://127.0.0.1:${port}`, '--bundle', 'certs/bundle.pem'].concat([
        '--token-file',
        file,
        '--out',
        'wl/slow',
      ]),
      { cwd, stdio: 'ignore' },
    );
    try {
      await waitFor('the request to connect', () => sockets.length > 0, 10_000);
      const cmdline = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8');
      expect(cmdline).toContain(file);
      expect(cmdline).not.toContain(token);
    } finally {
      child.kill('SIGKILL');
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('fail/neither or both of --token and --token-file → exit 2 (usage)', async () => {
    const base = ['cert', 'request', '--ca-url', url, '--bundle', 'certs/bundle.pem', '--out', 'wl/x'];
    const neither = await meshauth(base, { cwd });
    expect(neither.code).toBe(2);
    expect(neither.stderr).toContain('[MESHAUTH_ERR_USAGE]');
    const both = await meshauth([...base, '--token', 'A'.repeat(43), '--token-file', 'join.token'], { cwd });
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('[MESHAUTH_ERR_USAGE]');
  });

  it('fail/an unreadable token file → exit 2 naming the file, without its content', async () => {
    const missing = await meshauth(
      ['cert', 'request', '--ca-url', url, '--bundle', 'certs/bundle.pem', '--token-file', 'nope', '--out', 'wl/y'],
      { cwd },
    );
    expect(missing.code).toBe(2);
    // A relative path says where it was looked for.
    expect(missing.stderr).toContain(
      `--token-file: token file nope: cannot be read (ENOENT; a relative path is read from the current directory, ${cwd})`,
    );
    expect(missing.stderr).toContain('[MESHAUTH_ERR_FILE_UNREADABLE]');
  });
});
