// `meshauth sidecar` and `meshauth gateway` started with `trustDomain: other.org` and example.org's bundle refuse at
// start: exit 2, [MESHAUTH_ERR_CONFIG_INVALID], naming the config file, `trustDomain`, `ca.bundle` and both trust
// domains. They used to start and retry the CA for ever (its certificate is example.org's CA, never other.org's).
// Built CLI; the CA is never reached (the bundle is judged before anything binds or dials).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, MAIN } from '../helpers/meshauth-cli.js';
import { runCommand } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

let dir: string;
let ca: TestCa;
let bundle: string;

beforeAll(async () => {
  assertBuilt(['src/cli', 'src/config', 'src/sidecar', 'src/gateway']);
  dir = mkdtempSync(join(tmpdir(), 'meshauth-e2e-bundle-td-'));
  ca = await TestCa.create('example.org');
  bundle = file('bundle.pem', ca.bundlePem);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

/** Runs the built CLI; one that does start is killed after 15 s (what happened before the fix). */
function run(args: readonly string[]) {
  return runCommand(process.execPath, [MAIN, ...args], { timeoutMs: 15_000 });
}

function expectRefused(result: { code: number | null; stderr: string }, config: string): void {
  expect(result.code, result.stderr).toBe(2);
  expect(result.stderr).toContain(
    `${config}: ca.bundle: ${bundle} is the trust bundle of trust domain example.org, but trustDomain is other.org`,
  );
  expect(result.stderr).toContain('[MESHAUTH_ERR_CONFIG_INVALID]');
  expect(result.stderr).not.toMatch(/at .+\.js:\d+/);
}

describe('a trust bundle of another trust domain at start', () => {
  it('fail/meshauth sidecar exits 2 naming the file, both keys and both trust domains', async () => {
    const config = file(
      'sidecar.yaml',
      [
        'trustDomain: other.org',
        `ca: { url: "https://127.0.0.1:1", bundle: ${JSON.stringify(bundle)}, token: ${JSON.stringify(file('token', 'x'))} }`,
        'inbound: { listen: "127.0.0.1:0", app: "127.0.0.1:1" }',
        'outbound: { listen: "127.0.0.1:0" }',
        'admin: { listen: "127.0.0.1:0" }',
      ].join('\n'),
    );
    expectRefused(await run(['sidecar', '--config', config]), config);
  });

  it('fail/meshauth gateway exits 2 naming the file, both keys and both trust domains', async () => {
    const server = await ca.issue({ id: ca.idFor('/ns/edge/sa/public'), ipAddresses: ['127.0.0.1'] });
    const config = file(
      'gateway.json',
      JSON.stringify({
        trustDomain: 'other.org',
        ca: { url: 'https://127.0.0.1:1', bundle, token: file('token', 'x') },
        listen: '127.0.0.1:0',
        tls: { cert: file('tls.crt', server.chainPem), key: file('tls.key', server.keyPem) },
        routes: [
          {
            name: 'web',
            match: { host: '*' },
            to: { address: '127.0.0.1:1', ids: ['spiffe://other.org/ns/shop/sa/web'] },
            login: 'none',
          },
        ],
        admin: { listen: '127.0.0.1:0' },
      }),
    );
    expectRefused(await run(['gateway', '--config', config]), config);
  });
});
