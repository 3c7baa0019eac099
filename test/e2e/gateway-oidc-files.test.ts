// `meshauth gateway` reads oidc.clientSecretFile and oidc.caFile at start. An unusable file is a config problem the
// operator fixes, and the gateway says so like every other file it is given (tls.*, session.keys): exit 2 with one
// line naming the key and the path, [MESHAUTH_ERR_FILE_UNREADABLE], no stack. It used to read both with a bare
// readFileSync: a missing file exited 1 with Node's raw "ENOENT: no such file or directory, open …" (no stable code,
// no key), a FIFO at the path hung the start for ever, and an empty secret file started a gateway whose every sign-in
// would fail at the token endpoint.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, MAIN } from '../helpers/meshauth-cli.js';
import { fifoIn } from '../helpers/special-files.js';
import { TestCa } from '../helpers/test-ca.js';

/** Runs `meshauth gateway --config FILE`; a gateway still running after `limitMs` is killed (code null). */
function runGateway(configFile: string, limitMs = 10_000) {
  return new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [MAIN, 'gateway', '--config', configFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe('meshauth gateway: unusable oidc files', () => {
  let dir: string;
  let base: Record<string, unknown>;
  const file = (name: string, text: string) => {
    writeFileSync(join(dir, name), text, { mode: 0o600 });
    return join(dir, name);
  };
  const withOidc = (name: string, oidc: Record<string, unknown>) =>
    file(name, JSON.stringify({ ...base, oidc: { ...(base.oidc as object), ...oidc } }));

  beforeAll(async () => {
    assertBuilt(['src/gateway', 'src/cli', 'src/platform']);
    dir = mkdtempSync(join(tmpdir(), 'meshauth-gw-oidc-files-'));
    const ca = await TestCa.create();
    const server = await ca.issue({ id: ca.idFor('/ns/edge/sa/public'), ipAddresses: ['127.0.0.1'] });
    base = {
      trustDomain: 'example.org',
      ca: { url: 'https://127.0.0.1:1', bundle: file('bundle.pem', ca.bundlePem), token: file('token', 'x') },
      listen: '127.0.0.1:0',
      tls: { cert: file('tls.crt', server.chainPem), key: file('tls.key', server.keyPem) },
      session: { keys: [file('session.key', 's'.repeat(40))] },
      oidc: { issuer: 'http://127.0.0.1:9', clientId: 'gw', redirectUri: 'https://127.0.0.1/.meshauth/callback' },
      routes: [{ name: 'web', match: { host: '*' }, to: { address: '127.0.0.1:1', ids: ['spiffe://example.org/a'] } }],
      admin: { listen: '127.0.0.1:0' },
      drainTimeout: '1s',
    };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const expectRefused = (result: { code: number | null; stderr: string }, key: string, path: string, why: string) => {
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain(`${key}: ${why.replace('PATH', path)}`);
    expect(result.stderr).toContain('[MESHAUTH_ERR_FILE_UNREADABLE]');
    expect(result.stderr).not.toMatch(/at .+\.js:\d+/);
  };

  it('fail/a missing clientSecretFile exits 2 naming the key', async () => {
    const missing = join(dir, 'no-such-secret');
    expectRefused(
      await runGateway(withOidc('missing.json', { clientSecretFile: missing })),
      'oidc.clientSecretFile',
      missing,
      'client secret file PATH: cannot be read (ENOENT)',
    );
  });

  it('fail/a FIFO as clientSecretFile is refused at once instead of hanging the start', async () => {
    const fifo = fifoIn(dir, 'secret.fifo');
    expectRefused(
      await runGateway(withOidc('fifo.json', { clientSecretFile: fifo })),
      'oidc.clientSecretFile',
      fifo,
      'client secret file PATH: not a regular file',
    );
  }, 15_000);

  // The code readRegularFile makes up (ENOTREG) is nothing a user can look up: the message says what it means.
  it('fail/a directory as clientSecretFile says "not a regular file", not ENOTREG', async () => {
    const directory = join(dir, 'secret.d');
    mkdirSync(directory);
    const result = await runGateway(withOidc('directory.json', { clientSecretFile: directory }));
    expectRefused(result, 'oidc.clientSecretFile', directory, 'client secret file PATH: not a regular file');
    expect(result.stderr).not.toContain('ENOTREG');
  }, 15_000);

  // session.keys was read with a bare readFileSync: a directory said EISDIR, a FIFO hung the start.
  it('fail/a directory as a session key file exits 2 naming the key, "not a regular file"', async () => {
    const directory = join(dir, 'session.d');
    mkdirSync(directory, { recursive: true });
    const config = file('session-dir.json', JSON.stringify({ ...base, session: { keys: [directory] } }));
    expectRefused(await runGateway(config), 'session.keys[0]', directory, 'session key file PATH: not a regular file');
  }, 15_000);

  it('fail/an empty clientSecretFile is refused at start, not at the first sign-in', async () => {
    const empty = file('empty.secret', '\n');
    expectRefused(
      await runGateway(withOidc('empty.json', { clientSecretFile: empty })),
      'oidc.clientSecretFile',
      empty,
      'cannot use PATH (empty)',
    );
  }, 15_000);

  it('fail/a missing caFile (https issuer) exits 2 naming the key', async () => {
    const missing = join(dir, 'no-such-ca.pem');
    expectRefused(
      await runGateway(withOidc('ca.json', { issuer: 'https://127.0.0.1:9', caFile: missing })),
      'oidc.caFile',
      missing,
      'CA file PATH: cannot be read (ENOENT)',
    );
  });
});
