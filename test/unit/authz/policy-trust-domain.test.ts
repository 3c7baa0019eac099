// Policy conditions on another trust domain than the mesh's: no such peer is ever accepted (no federation), so a
// rule that needs one never matches and a `notIds` entry excludes nobody. Refused when the trust domain is known
// (parsePolicy's argument, PolicyWatcher's option: the sidecar and the gateway pass theirs, `policy validate` its
// --trust-domain); accepted without one.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type PolicyProblem, parsePolicy } from '../../../src/authz/policy/parse-policy.js';
import { PolicyWatcher } from '../../../src/authz/policy-watcher.js';
import { isMeshauthError } from '../../../src/errors/index.js';
import { Metrics, silentLogger } from '../../../src/telemetry/index.js';
import { waitFor } from '../../helpers/wait.js';

const HEAD = 'apiVersion: meshauth.dev/v1\nkind: Policy\n';
const rule = (body: string) => `${HEAD}rules:\n  - name: r\n    action: allow\n    ${body}\n`;

function problems(text: string, trustDomain: string): PolicyProblem[] {
  try {
    parsePolicy(text, 'p.yaml', trustDomain);
  } catch (error) {
    if (isMeshauthError(error, 'MESHAUTH_ERR_POLICY_INVALID')) {
      return (error.detail as { problems: PolicyProblem[] }).problems;
    }
    throw error;
  }
  throw new Error('expected the policy to be invalid');
}

describe('policy rules on another trust domain', () => {
  it.each([
    [
      'from.ids',
      'from: { ids: ["spiffe://example.org/ns/a/sa/b", "spiffe://other.org/ns/a/sa/b"] }',
      'from.ids[1]',
      'it never matches',
    ],
    ['an ID prefix', 'from: { ids: ["spiffe://other.org/ns/a/*"] }', 'from.ids[0]', 'it never matches'],
    ['from.notIds', 'from: { notIds: ["spiffe://other.org/ns/a/sa/b"] }', 'from.notIds[0]', 'it excludes no caller'],
    [
      'when.chain.includes',
      'when: { chain: { includes: ["spiffe://other.org/ns/a/sa/b"] } }',
      'when.chain.includes[0]',
      'no call chain has it',
    ],
    [
      'when.chain.startsWith',
      'when: { chain: { startsWith: "spiffe://other.org/ns/a/sa/b" } }',
      'when.chain.startsWith[0]',
      'no call chain has it',
    ],
  ])('fail/%s', (_name, body, field, consequence) => {
    const [p, ...rest] = problems(rule(body), 'example.org');
    expect(rest).toEqual([]);
    expect(p?.rule).toBe('rules[0] "r"');
    expect(p?.field).toBe(field);
    expect(p?.message).toMatch(
      /is in trust domain other\.org, not example\.org: no peer of another trust domain is ever accepted/,
    );
    expect(p?.message).toContain(consequence);
  });

  it('fail/from.trustDomains', () => {
    expect(problems(rule('from: { trustDomains: [example.org, other.org] }'), 'example.org')).toEqual([
      {
        rule: 'rules[0] "r"',
        field: 'from.trustDomains[1]',
        message:
          "other.org is not the mesh's trust domain example.org: no peer of another trust domain is ever accepted (meshauth has no federation), so it never matches",
      },
    ]);
  });

  it('ok/the own trust domain, and any without one to check against', () => {
    const text = rule('from: { ids: ["spiffe://example.org/ns/a/sa/b"], trustDomains: [example.org] }');
    expect(parsePolicy(text, 'p.yaml', 'example.org').rules).toHaveLength(1);
    const foreign = rule('from: { ids: ["spiffe://other.org/ns/a/sa/b"] }');
    expect(parsePolicy(foreign, 'p.yaml').rules).toHaveLength(1);
  });
});

describe('PolicyWatcher with the trust domain', () => {
  let dir: string;
  let watcher: PolicyWatcher | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshauth-policy-td-'));
    metrics = new Metrics();
  });
  afterEach(async () => {
    watcher?.close();
    watcher = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  let metrics: Metrics;
  const failures = async () =>
    (await metrics.policyReloads.get()).values.find((v) => v.labels.result === 'failure')?.value ?? 0;
  const create = (file: string) =>
    new PolicyWatcher({
      file,
      logger: silentLogger(),
      metrics,
      trustDomain: 'example.org',
      fsWatch: false,
      pollIntervalMs: 50,
      debounceMs: 10,
      settleMs: 0,
    });

  it('fail/a start on a foreign rule fails with MESHAUTH_ERR_POLICY_INVALID', async () => {
    const file = join(dir, 'policy.yaml');
    await writeFile(file, rule('from: { ids: ["spiffe://other.org/ns/a/sa/b"] }'));
    watcher = create(file);
    const outcome = await watcher.start().then(
      () => 'started',
      (error: unknown) => error,
    );
    expect(isMeshauthError(outcome, 'MESHAUTH_ERR_POLICY_INVALID'), String(outcome)).toBe(true);
    expect((outcome as Error).message).toContain(
      'rules[0] "r" from.ids[0]: spiffe://other.org/ns/a/sa/b is in trust domain other.org',
    );
  });

  it('fail/a reload with a foreign rule is refused and the old policy stays', async () => {
    const file = join(dir, 'policy.yaml');
    await writeFile(file, rule('from: { ids: ["spiffe://example.org/ns/a/sa/b"] }'));
    const started = create(file);
    watcher = started;
    const first = await started.start();
    await writeFile(file, rule('from: { ids: ["spiffe://other.org/ns/a/sa/b"] }'));
    await waitFor('the refused reload', async () => (await failures()) === 1);
    expect(started.current()).toBe(first);
    await writeFile(file, `${HEAD}rules: []\n`);
    await waitFor('the valid policy to be applied', () => started.current() !== first);
    expect(started.current().rules).toHaveLength(0);
  });
});
