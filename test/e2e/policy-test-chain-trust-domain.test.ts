// `policy test --trust-domain TD` refused a --from outside TD, but ran the rules on a --chain whose first hop is outside
// it. That hop signed the passport's origin, which the sidecar of TD validates against its trust bundle: it rejects
// such a passport before any rule runs, so the decision described no request it sees. Later hops are asserted by the
// peer's own link alone, and the sidecar now refuses a passport naming one that is no workload of its trust domain
// (meshauth has no federation, so no honest peer names one): the dry run refuses those too.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, meshauth, ROOT } from '../helpers/meshauth-cli.js';

const POLICY = 'deploy/policy.example.yaml';
const FRONTEND = 'spiffe://example.org/ns/shop/sa/frontend';
const GATEWAY = 'spiffe://example.org/ns/edge/sa/gateway';
const FOREIGN = 'spiffe://other.org/ns/edge/sa/gateway';
const ORDERS = 'spiffe://example.org/ns/shop/sa/orders';
/** frontend-read-orders allows it when the chain includes GATEWAY. */
const READ = ['--from', FRONTEND, '--path', '/orders/42', '--user', '{"sub":"alice","scope":"orders:read"}'];

let scratch: string;

beforeAll(() => {
  assertBuilt(['src/authz', 'src/cli/policy.ts']);
  scratch = mkdtempSync(join(tmpdir(), 'meshauth-e2e-policy-chain-'));
});
afterAll(() => {
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
});

const policyTest = (...args: string[]) =>
  meshauth(['policy', 'test', POLICY, '--trust-domain', 'example.org', ...args], { cwd: ROOT });

describe('policy test --chain and --trust-domain', () => {
  it('fail/a --chain starting in another trust domain exits 2 naming the flag, the hop and both trust domains', async () => {
    const r = await policyTest(...READ, '--chain', `${FOREIGN},${GATEWAY}`);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `meshauth: --chain hop ${FOREIGN} is in trust domain other.org, not example.org (--trust-domain): the first ` +
        "hop signed the passport's origin, and a sidecar of example.org accepts no signer of another trust domain " +
        '(meshauth has no federation), so it rejects the passport before any rule runs: give a --chain starting in ' +
        'example.org, or the --trust-domain of the mesh it is in [MESHAUTH_ERR_USAGE]\n',
    );
  });

  it('fail/a --chain with a later hop of another trust domain exits 2 naming the hop, as the sidecar refuses it', async () => {
    const r = await policyTest(...READ, '--chain', `${GATEWAY},${FOREIGN}`);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `meshauth: --chain hop ${FOREIGN} is in trust domain other.org, not example.org (--trust-domain): every ` +
        'honest hop of a call in example.org is a workload of example.org (meshauth has no federation), so a ' +
        'sidecar of example.org rejects a passport naming any other hop before any rule runs: give a --chain of ' +
        'workloads in example.org, or the --trust-domain of the mesh it is in [MESHAUTH_ERR_USAGE]\n',
    );
  });

  it("fail/a --chain with the trust domain's own ID as a hop exits 2: it names no workload", async () => {
    const r = await policyTest(...READ, '--chain', `${GATEWAY},spiffe://example.org`);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^meshauth: --chain hop spiffe:\/\/example\.org names trust domain example\.org \(--trust-domain\) itself, not a workload of it: /,
    );
  });

  it('ok/a --chain of workloads of --trust-domain reaches the rules', async () => {
    const r = await policyTest(...READ, '--chain', `${GATEWAY},${ORDERS}`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^allow: rule "frontend-read-orders"/);
  });

  it('ok/without --trust-domain a --chain of any trust domain is tested', async () => {
    const r = await meshauth(['policy', 'test', POLICY, ...READ, '--chain', `${FOREIGN},${GATEWAY}`], { cwd: ROOT });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^allow: rule "frontend-read-orders"/);
  });

  it('fail/a case whose chain has a hop of another trust domain is denied before any rule, exit 1 when allow was expected', async () => {
    const read = `    from: ${FRONTEND}\n    method: GET\n    path: /orders/42\n    user: { sub: alice, scope: "orders:read" }\n`;
    const cases = join(scratch, 'chain.cases.yaml');
    writeFileSync(
      cases,
      'cases:\n' +
        `  - name: through a foreign gateway\n${read}    chain: [${FOREIGN}, ${GATEWAY}]\n    expect: allow\n` +
        `  - name: foreign origins may not\n${read}    chain: [${FOREIGN}, ${GATEWAY}]\n    expect: deny\n` +
        `  - name: through a foreign later hop\n${read}    chain: [${GATEWAY}, ${FOREIGN}]\n` +
        '    expect: allow\n    rule: frontend-read-orders\n' +
        `  - name: foreign later hops may not\n${read}    chain: [${GATEWAY}, ${FOREIGN}]\n    expect: deny\n` +
        `  - name: in-mesh later hops are decided by the rules\n${read}    chain: [${GATEWAY}, ${ORDERS}]\n` +
        '    expect: allow\n    rule: frontend-read-orders\n',
    );
    const r = await policyTest('--cases', cases);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe(
      'FAIL through a foreign gateway: expected allow, got deny (MESHAUTH_ERR_PASSPORT_INVALID)\n' +
        'PASS foreign origins may not: deny (MESHAUTH_ERR_PASSPORT_INVALID)\n' +
        'FAIL through a foreign later hop: expected allow (frontend-read-orders), got deny (MESHAUTH_ERR_PASSPORT_INVALID)\n' +
        'PASS foreign later hops may not: deny (MESHAUTH_ERR_PASSPORT_INVALID)\n' +
        'PASS in-mesh later hops are decided by the rules: allow (frontend-read-orders)\n' +
        '5 cases: 3 passed, 2 failed\n',
    );
  });
});
