// `meshauth gateway --config FILE` as a process: a config error exits 2 naming the file and the key; a valid config
// listens (public TLS + admin), and SIGTERM drains and exits 0. Runs the built CLI; until `gateway` is registered
// in the program, the same register function is driven by a two-line entry on the built modules.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/meshauth-cli.js';
import { TestCa } from '../helpers/test-ca.js';

const ENTRY = `
import { Command } from 'commander';
import { registerGatewayCommand } from '${ROOT}dist/src/cli/gateway.js';
import { exitWithError } from '${ROOT}dist/src/cli/run.js';
const program = new Command('meshauth').exitOverride();
registerGatewayCommand(program);
program.parseAsync(process.argv.slice(1), { from: 'user' }).catch(exitWithError);
`;

function runGateway(args: string[], onStderr?: (text: string, kill: () => void) => void) {
  return new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', ENTRY, '--', 'gateway', ...args], {
      cwd: ROOT,
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      onStderr?.(stderr, () => child.kill('SIGTERM'));
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe('meshauth gateway (process)', () => {
  let dir: string;
  let config: Record<string, unknown>;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshauth-gw-cli-'));
    const ca = await TestCa.create();
    const server = await ca.issue({ id: ca.idFor('/ns/edge/sa/public'), ipAddresses: ['127.0.0.1'] });
    const file = (name: string, text: string) => {
      writeFileSync(join(dir, name), text, { mode: 0o600 });
      return join(dir, name);
    };
    config = {
      trustDomain: 'example.org',
      ca: { url: 'https://127.0.0.1:1', bundle: file('bundle.pem', ca.bundlePem), token: file('token', 'x') },
      listen: '127.0.0.1:0',
      tls: { cert: file('tls.crt', server.chainPem), key: file('tls.key', server.keyPem) },
      session: { keys: [file('session.key', 's'.repeat(40))] },
      oidc: {
        issuer: 'http://127.0.0.1:9',
        clientId: 'gw',
        redirectUri: 'https://127.0.0.1/.meshauth/callback',
      },
      routes: [
        {
          name: 'web',
          match: { host: '*' },
          to: { address: '127.0.0.1:1', ids: ['spiffe://example.org/ns/shop/sa/web'] },
        },
      ],
      admin: { listen: '127.0.0.1:0' },
      drainTimeout: '1s',
    };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('fail/a config error exits 2 naming the file and the key', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      JSON.stringify({ ...config, oidc: { ...(config.oidc as object), issuer: 'http://login.example.com' } }),
    );
    const { code, stderr } = await runGateway(['--config', bad]);
    expect(code).toBe(2);
    expect(stderr).toContain(`${bad}: oidc.issuer: an http:// issuer is refused`);
    expect(stderr).toContain('[MESHAUTH_ERR_CONFIG_INVALID]');
    expect(stderr).not.toMatch(/at .+\.js:\d+/);
  });

  // A file the config names that is missing: exit 2 naming the config file and the key (it used to name the path
  // alone, tls.cert and tls.key together, or, for ca.bundle under jwtSvids, exit 1 with Node's raw ENOENT).
  it.each([
    [
      'tls.cert',
      (c: Record<string, unknown>) => ({ ...c, tls: { ...(c.tls as object), cert: '/nonexistent/tls.crt' } }),
    ],
    ['policy', (c: Record<string, unknown>) => ({ ...c, policy: '/nonexistent/policy.yaml' })],
    ['session.keys[0]', (c: Record<string, unknown>) => ({ ...c, session: { keys: ['/nonexistent/session.key'] } })],
    [
      'oidc.clientSecretFile',
      (c: Record<string, unknown>) => ({ ...c, oidc: { ...(c.oidc as object), clientSecretFile: '/nonexistent/s' } }),
    ],
    [
      'ca.bundle',
      (c: Record<string, unknown>) => ({
        ...c,
        ca: { ...(c.ca as object), bundle: '/nonexistent/bundle.pem' },
        jwtSvids: { audiences: ['gw'] },
      }),
    ],
  ])('fail/a missing file at %s exits 2 naming the config file and the key', async (key, edit) => {
    const bad = join(dir, `missing-${key}.yaml`);
    writeFileSync(bad, JSON.stringify(edit(config)));
    const { code, stderr } = await runGateway(['--config', bad]);
    expect(code, stderr).toBe(2);
    // `<key>: cannot read …` or `<key>: <what> <path>: cannot be read (ENOENT)`.
    expect(stderr).toContain(`meshauth: ${bad}: ${key}: `);
    expect(stderr).toMatch(/: cannot (read|be read)/);
    expect(stderr).toContain('/nonexistent/');
    expect(stderr).toContain('[MESHAUTH_ERR_FILE_UNREADABLE]');
  });

  it('fail/an apiIssuers algorithm the gateway refuses is named by file and apiIssuers key', async () => {
    // It used to be reported without the file and as inbound.endUser.issuers[0] (a sidecar key).
    const bad = join(dir, 'api-hs256.yaml');
    const apiIssuers = [{ issuer: 'https://idp.example.com', audiences: ['shop'], algorithms: ['RS256', 'HS256'] }];
    writeFileSync(bad, JSON.stringify({ ...config, apiIssuers }));
    const { code, stderr } = await runGateway(['--config', bad]);
    expect(code).toBe(2);
    expect(stderr).toContain(`meshauth: ${bad}: apiIssuers[0].algorithms: algorithm "HS256" is not allowed`);
    expect(stderr).not.toContain('inbound.endUser');
    expect(stderr).toContain('[MESHAUTH_ERR_CONFIG_INVALID]');
  });

  it('fail/an http:// ca.url exits 2 naming the file and the key', async () => {
    // It used to start and retry the CA for ever, logging a config error per attempt.
    const bad = join(dir, 'http-ca.yaml');
    writeFileSync(bad, JSON.stringify({ ...config, ca: { ...(config.ca as object), url: 'http://127.0.0.1:1' } }));
    const { code, stderr } = await runGateway(['--config', bad]);
    expect(code).toBe(2);
    expect(stderr).toContain(`${bad}: ca.url: expected an https:// URL`);
    expect(stderr).toContain('[MESHAUTH_ERR_CONFIG_INVALID]');
  });

  it('fail/oidc.idTokenAlgorithm HS256 exits 2 naming the file and the key', async () => {
    // It used to start; the first sign-in then failed with "offers no asymmetric ID token algorithm; set
    // oidc.idTokenAlgorithm", the key the user had set.
    const bad = join(dir, 'hs256-id-token.yaml');
    writeFileSync(bad, JSON.stringify({ ...config, oidc: { ...(config.oidc as object), idTokenAlgorithm: 'HS256' } }));
    const { code, stderr } = await runGateway(['--config', bad]);
    expect(code).toBe(2);
    expect(stderr).toContain(`${bad}: oidc.idTokenAlgorithm: expected an asymmetric algorithm`);
    expect(stderr).toContain('[MESHAUTH_ERR_CONFIG_INVALID]');
  });

  it('ok/starts listening, then SIGTERM drains and exits 0', async () => {
    const good = join(dir, 'gateway.yaml');
    writeFileSync(good, JSON.stringify(config));
    let signalled = false;
    const { code, stderr } = await runGateway(['--config', good], (text, kill) => {
      if (!signalled && text.includes('"gateway listening"')) {
        signalled = true;
        kill();
      }
    });
    expect(signalled, stderr).toBe(true);
    expect(code).toBe(0);
    expect(stderr).toContain('"gateway stopped"');
    expect(stderr).toContain('http:// on loopback'); // the development issuer is warned about
  });
});
