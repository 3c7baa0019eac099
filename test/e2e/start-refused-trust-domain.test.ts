// `meshauth sidecar` and `meshauth gateway` refuse at start, exit 2, what names another trust domain than their own
// `trustDomain` (meshauth has no federation, so it could never hold): a policy rule on another trust domain's IDs (an
// allow that never matches, a notIds entry that spares nobody), [MESHAUTH_ERR_POLICY_INVALID] naming the policy file,
// rule and field; and a `ca.bundle` of another trust domain's CA, [MESHAUTH_ERR_CONFIG_INVALID] naming the config
// file, both keys and both trust domains. They used to start: enforcing the policy, or retrying the CA for ever.
// Built CLI; the CA is never reached (both are judged before anything binds or dials).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, MAIN } from '../helpers/meshauth-cli.js';
import { runCommand } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

const FOREIGN = 'spiffe://other.org/ns/ops/sa/admin';
const POLICY = [
  'apiVersion: meshauth.dev/v1',
  'kind: Policy',
  'rules:',
  '  - name: health',
  '    action: allow',
  '    to: { methods: [GET], paths: ["/healthz"] }',
  '  - name: spare-ops',
  '    action: deny',
  `    from: { notIds: ["${FOREIGN}"] }`,
  '    to: { paths: ["/admin/*"] }',
  '',
].join('\n');

let dir: string;
let ca: TestCa;
let policyFile: string;
let bundle: string;

beforeAll(async () => {
  assertBuilt(['src/authz', 'src/cli', 'src/config', 'src/sidecar', 'src/gateway']);
  dir = mkdtempSync(join(tmpdir(), 'meshauth-e2e-foreign-td-'));
  ca = await TestCa.create('example.org');
  policyFile = file('policy.yaml', POLICY);
  bundle = file('bundle.pem', ca.bundlePem);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

/** Runs the built CLI; one that does start is killed after 15 s (what happened before the fixes). */
function run(args: readonly string[]) {
  return runCommand(process.execPath, [MAIN, ...args], { timeoutMs: 15_000 });
}

interface Start {
  readonly trustDomain: string;
  readonly policy?: string;
}

function sidecarConfig(name: string, { trustDomain, policy }: Start): string {
  return file(
    name,
    [
      `trustDomain: ${trustDomain}`,
      `ca: { url: "https://127.0.0.1:1", bundle: ${JSON.stringify(bundle)}, token: ${JSON.stringify(file('token', 'x'))} }`,
      `inbound: { listen: "127.0.0.1:0", app: "127.0.0.1:1"${policy === undefined ? '' : `, policy: ${JSON.stringify(policy)}`} }`,
      'outbound: { listen: "127.0.0.1:0" }',
      'admin: { listen: "127.0.0.1:0" }',
    ].join('\n'),
  );
}

async function gatewayConfig(name: string, { trustDomain, policy }: Start): Promise<string> {
  const server = await ca.issue({ id: ca.idFor('/ns/edge/sa/public'), ipAddresses: ['127.0.0.1'] });
  return file(
    name,
    JSON.stringify({
      trustDomain,
      ca: { url: 'https://127.0.0.1:1', bundle, token: file('token', 'x') },
      listen: '127.0.0.1:0',
      tls: { cert: file('tls.crt', server.chainPem), key: file('tls.key', server.keyPem) },
      routes: [
        {
          name: 'web',
          match: { host: '*' },
          to: { address: '127.0.0.1:1', ids: [`spiffe://${trustDomain}/ns/shop/sa/web`] },
          login: 'none',
        },
      ],
      ...(policy === undefined ? {} : { policy }),
      admin: { listen: '127.0.0.1:0' },
    }),
  );
}

function expectRefused(result: { code: number | null; stderr: string }, words: string, code: string): void {
  expect(result.code, result.stderr).toBe(2);
  expect(result.stderr).toContain(words);
  expect(result.stderr).toContain(`[${code}]`);
  expect(result.stderr).not.toMatch(/at .+\.js:\d+/);
}

describe('a policy on another trust domain at start', () => {
  const words = () =>
    `${policyFile}: rules[1] "spare-ops" from.notIds[0]: ${FOREIGN} is in trust domain other.org, not example.org`;

  it('fail/meshauth sidecar exits 2 naming the file, rule and field', async () => {
    const config = sidecarConfig('sidecar-policy.yaml', { trustDomain: 'example.org', policy: policyFile });
    const result = await run(['sidecar', '--config', config]);
    expectRefused(result, words(), 'MESHAUTH_ERR_POLICY_INVALID');
    expect(result.stderr).toContain('so it excludes no caller');
  });

  it('fail/meshauth gateway exits 2 naming the file, rule and field', async () => {
    const config = await gatewayConfig('gateway-policy.json', { trustDomain: 'example.org', policy: policyFile });
    const result = await run(['gateway', '--config', config]);
    expectRefused(result, words(), 'MESHAUTH_ERR_POLICY_INVALID');
    expect(result.stderr).toContain('so it excludes no caller');
  });
});

describe('a trust bundle of another trust domain at start', () => {
  const words = (config: string) =>
    `${config}: ca.bundle: ${bundle} is the trust bundle of trust domain example.org, but trustDomain is other.org`;

  it('fail/meshauth sidecar exits 2 naming the file, both keys and both trust domains', async () => {
    const config = sidecarConfig('sidecar-bundle.yaml', { trustDomain: 'other.org' });
    expectRefused(await run(['sidecar', '--config', config]), words(config), 'MESHAUTH_ERR_CONFIG_INVALID');
  });

  it('fail/meshauth gateway exits 2 naming the file, both keys and both trust domains', async () => {
    const config = await gatewayConfig('gateway-bundle.json', { trustDomain: 'other.org' });
    expectRefused(await run(['gateway', '--config', config]), words(config), 'MESHAUTH_ERR_CONFIG_INVALID');
  });
});
