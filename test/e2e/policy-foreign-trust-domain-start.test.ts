// `meshauth sidecar` and `meshauth gateway` given a policy with a rule on another trust domain's IDs (which no peer
// can ever have: an allow that never matches, a notIds entry that spares nobody) refuse to start as for any invalid
// policy: exit 2, [MESHAUTH_ERR_POLICY_INVALID], the policy file, the rule, the field and why. They used to start and
// enforce it. Built CLI; the CA is never reached (the policy is judged before anything binds or dials).
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
let policyFile: string;

beforeAll(() => {
  assertBuilt(['src/authz', 'src/cli', 'src/config', 'src/sidecar', 'src/gateway']);
  dir = mkdtempSync(join(tmpdir(), 'meshauth-e2e-foreign-td-'));
  policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, POLICY);
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

function expectRefused(result: { code: number | null; stderr: string }): void {
  expect(result.code, result.stderr).toBe(2);
  expect(result.stderr).toContain(
    `${policyFile}: rules[1] "spare-ops" from.notIds[0]: ${FOREIGN} is in trust domain other.org, not example.org`,
  );
  expect(result.stderr).toContain('so it excludes no caller [MESHAUTH_ERR_POLICY_INVALID]');
  expect(result.stderr).not.toMatch(/at .+\.js:\d+/);
}

describe('a policy on another trust domain at start', () => {
  it('fail/meshauth sidecar exits 2 naming the file, rule and field', async () => {
    const config = file(
      'sidecar.yaml',
      [
        'trustDomain: example.org',
        'ca: { url: "https://127.0.0.1:1", bundle: /nonexistent, token: /nonexistent }',
        `inbound: { listen: "127.0.0.1:0", app: "127.0.0.1:1", policy: ${JSON.stringify(policyFile)} }`,
        'outbound: { listen: "127.0.0.1:0" }',
        'admin: { listen: "127.0.0.1:0" }',
      ].join('\n'),
    );
    expectRefused(await run(['sidecar', '--config', config]));
  });

  it('fail/meshauth gateway exits 2 naming the file, rule and field', async () => {
    const ca = await TestCa.create();
    const server = await ca.issue({ id: ca.idFor('/ns/edge/sa/public'), ipAddresses: ['127.0.0.1'] });
    const config = file(
      'gateway.json',
      JSON.stringify({
        trustDomain: 'example.org',
        ca: { url: 'https://127.0.0.1:1', bundle: file('bundle.pem', ca.bundlePem), token: file('token', 'x') },
        listen: '127.0.0.1:0',
        tls: { cert: file('tls.crt', server.chainPem), key: file('tls.key', server.keyPem) },
        routes: [
          {
            name: 'web',
            match: { host: '*' },
            to: { address: '127.0.0.1:1', ids: ['spiffe://example.org/ns/shop/sa/web'] },
            login: 'none',
          },
        ],
        policy: policyFile,
        admin: { listen: '127.0.0.1:0' },
      }),
    );
    expectRefused(await run(['gateway', '--config', config]));
  });
});
