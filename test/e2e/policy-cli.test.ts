// `meshauth policy validate|test` through the built CLI (run `npm run build` first; the test refuses a dist/ older
// than the sources it exercises, so it cannot pass on a stale build).
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = new URL('../..', import.meta.url).pathname;
const MAIN = join(ROOT, 'dist/src/cli/main.js');
const POLICY = 'deploy/policy.example.yaml';
const CASES = 'deploy/policy.example.cases.yaml';
const FRONTEND = 'spiffe://example.org/ns/shop/sa/frontend';

interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function meshauth(...args: string[]): Promise<Result> {
  try {
    const { stdout, stderr } = await run(process.execPath, [MAIN, ...args], { cwd: ROOT, timeout: 20_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function newestSource(dir: string): Promise<number> {
  let newest = 0;
  for (const entry of await readdir(join(ROOT, dir), { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith('.ts')) {
      newest = Math.max(newest, (await stat(join(entry.parentPath, entry.name))).mtimeMs);
    }
  }
  return newest;
}

let scratch: string;

beforeAll(async () => {
  const built = await stat(MAIN).catch(() => undefined);
  if (built === undefined) throw new Error('dist/src/cli/main.js is missing: run `npm run build` first');
  const sources = Math.max(await newestSource('src/authz'), (await stat(join(ROOT, 'src/cli/policy.ts'))).mtimeMs);
  const compiled = (await stat(join(ROOT, 'dist/src/cli/policy.js'))).mtimeMs;
  if (compiled < sources) throw new Error('dist/ is older than src/authz or src/cli/policy.ts: run `npm run build`');
  scratch = await mkdtemp(join(tmpdir(), 'meshauth-policy-cli-'));
});

afterAll(async () => {
  if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
});

describe('meshauth policy (built CLI)', () => {
  it('ok/the shipped example passes its own cases table', async () => {
    const r = await meshauth('policy', 'test', POLICY, '--cases', CASES);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^(\d+) cases: \1 passed, 0 failed$/m);
    expect(r.stdout.split('\n').filter((l) => l.startsWith('PASS ')).length).toBeGreaterThanOrEqual(10);
  });

  it('fail/a case table with a wrong expectation exits 1 and names the case', async () => {
    const cases = join(scratch, 'wrong.cases.yaml');
    await writeFile(
      cases,
      `cases:\n  - name: wrongly expected\n    from: ${FRONTEND}\n    method: GET\n    path: /admin\n    expect: allow\n`,
    );
    const r = await meshauth('policy', 'test', POLICY, '--cases', cases);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('FAIL wrongly expected: expected allow, got deny (admin-only-from-ops)');
    expect(r.stdout).toContain('1 cases: 0 passed, 1 failed');
  });

  it('fail/an invalid cases file exits 2', async () => {
    const cases = join(scratch, 'invalid.cases.yaml');
    await writeFile(cases, `cases:\n  - name: x\n    from: ${FRONTEND}\n    path: /\n    expect: maybe\n`);
    const r = await meshauth('policy', 'test', POLICY, '--cases', cases);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('MESHAUTH_ERR_CONFIG_INVALID');
  });

  it('ok/validate prints FILE: ok (N rules)', async () => {
    const r = await meshauth('policy', 'validate', POLICY);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${POLICY}: ok (7 rules)\n`);
  });

  it('fail/validate names file, rule and field, and exits 2', async () => {
    const bad = join(scratch, 'bad.yaml');
    await writeFile(
      bad,
      'apiVersion: meshauth.dev/v1\nkind: Policy\nrules:\n  - name: orders-read\n    action: allow\n    to: { paths: ["orders/*"], verbs: [GET] }\n',
    );
    const r = await meshauth('policy', 'validate', POLICY, bad);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain(`${POLICY}: ok`);
    expect(r.stderr).toContain(`${bad}: rules[0] "orders-read" to.paths[0]: expected a path starting with "/"`);
    expect(r.stderr).toContain(`${bad}: rules[0] "orders-read" to: unknown field "verbs"`);
  });

  it('fail/validate on an empty file says so, each problem line carrying MESHAUTH_ERR_POLICY_INVALID', async () => {
    const empty = join(scratch, 'empty.yaml');
    await writeFile(empty, '');
    const r = await meshauth('policy', 'validate', empty);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `${empty}: the file is empty: expected a policy with apiVersion: meshauth.dev/v1, kind: Policy and rules [MESHAUTH_ERR_POLICY_INVALID]\n`,
    );
  });

  it('fail/validate on a directory says "not a regular file" with its code', async () => {
    const r = await meshauth('policy', 'validate', scratch);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `meshauth: cannot read policy file ${scratch}: not a regular file [MESHAUTH_ERR_FILE_UNREADABLE]\n`,
    );
  });

  // A rule on another trust domain's IDs never holds in a mesh of one trust domain (a notIds entry spares nobody):
  // with --trust-domain, validate refuses it as the sidecar and gateway do; without, it cannot know the mesh's.
  describe('validate --trust-domain', () => {
    const foreign = 'spiffe://other.org/ns/ops/sa/admin';
    const text =
      'apiVersion: meshauth.dev/v1\nkind: Policy\nrules:\n  - name: spare-ops\n    action: deny\n' +
      `    from: { notIds: ["${foreign}"] }\n    to: { paths: ["/admin/*"] }\n`;

    it('fail/a rule on another trust domain exits 2 naming rule and field', async () => {
      const file = join(scratch, 'foreign.yaml');
      await writeFile(file, text);
      const r = await meshauth('policy', 'validate', '--trust-domain', 'example.org', file);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(
        `${file}: rules[0] "spare-ops" from.notIds[0]: ${foreign} is in trust domain other.org, not example.org: ` +
          'no peer of another trust domain is ever accepted (meshauth has no federation), so it excludes no caller ' +
          '[MESHAUTH_ERR_POLICY_INVALID]\n',
      );
    });

    it('ok/without --trust-domain the same file is valid', async () => {
      const file = join(scratch, 'foreign-unchecked.yaml');
      await writeFile(file, text);
      const r = await meshauth('policy', 'validate', file);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`${file}: ok (1 rule)\n`);
    });

    it('ok/the shipped example is in trust domain example.org', async () => {
      const r = await meshauth('policy', 'validate', '--trust-domain', 'example.org', POLICY);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    });

    it('fail/an invalid trust domain name exits 2 before reading any file', async () => {
      const r = await meshauth('policy', 'validate', '--trust-domain', 'Example.org', POLICY);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain('[MESHAUTH_ERR_TRUST_DOMAIN_INVALID]');
    });
  });

  it('ok/validate counts one rule in the singular', async () => {
    const file = join(scratch, 'one-rule.yaml');
    await writeFile(
      file,
      'apiVersion: meshauth.dev/v1\nkind: Policy\nmode: audit\nrules: [{ name: r, action: allow }]\n',
    );
    const r = await meshauth('policy', 'validate', file);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${file}: ok (1 rule, audit mode)\n`);
  });

  // The names meshauth writes in the `rule` field of its own decisions (audit lines, 403 bodies, decision metrics):
  // a user rule so named used to validate, and its denies then read as the built-in one's.
  it.each([
    ['path-normalization', 'the 400 for a request whose path can be read two ways'],
    ['tcp-policy-invalid', 'the refusal of a TCP connection under a policy TCP cannot enforce'],
    ['route-roles', "the gateway's refusal of a user without the route's roles"],
    ['no-route', "the gateway's refusal of a request no route matches"],
  ])('fail/validate refuses a rule named %s, reserved for a decision of meshauth itself', async (name, decision) => {
    const file = join(scratch, `reserved-${name}.yaml`);
    await writeFile(file, `apiVersion: meshauth.dev/v1\nkind: Policy\nrules: [{ name: ${name}, action: deny }]\n`);
    const r = await meshauth('policy', 'validate', file);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `${file}: rules[0] "${name}" name: "${name}" is reserved (meshauth's name for ${decision}): a rule of that ` +
        'name would be mistaken for it in audit lines and metrics [MESHAUTH_ERR_POLICY_INVALID]\n',
    );
  });

  it('fail/validate given a cases file keeps its problems and adds one hint line for policy test --cases', async () => {
    const r = await meshauth('policy', 'validate', CASES);
    expect(r.code).toBe(2);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(5);
    expect(
      lines.slice(0, 4).every((l) => l.startsWith(`${CASES}: `) && l.endsWith(' [MESHAUTH_ERR_POLICY_INVALID]')),
    ).toBe(true);
    expect(lines[3]).toBe(`${CASES}: unknown field "cases" [MESHAUTH_ERR_POLICY_INVALID]`);
    expect(lines[4]).toBe(
      `${CASES}: hint: this looks like a cases file: run it with \`meshauth policy test <policy file> --cases ${CASES}\``,
    );
  });

  it('fail/validate of a policy with problems but no cases key gives no hint', async () => {
    const bad = join(scratch, 'bad-action.yaml');
    await writeFile(bad, 'apiVersion: meshauth.dev/v1\nkind: Policy\nrules: [{ name: r, action: permit }]\n');
    const r = await meshauth('policy', 'validate', bad);
    expect(r.code).toBe(2);
    expect(r.stderr).not.toContain(': hint: ');
  });

  // The same option and check as validate's: the dry run refuses what the sidecar of that trust domain refuses.
  describe('test --trust-domain', () => {
    const foreign = 'spiffe://other.org/ns/ops/sa/admin';
    const text =
      'apiVersion: meshauth.dev/v1\nkind: Policy\nrules:\n  - name: ops-admin\n    action: allow\n' +
      `    from: { ids: ["${foreign}"] }\n    to: { paths: ["/admin/*"] }\n`;

    it('fail/a rule on another trust domain exits 2 naming rule and field', async () => {
      const file = join(scratch, 'test-foreign.yaml');
      await writeFile(file, text);
      const r = await meshauth(
        'policy',
        'test',
        file,
        '--trust-domain',
        'example.org',
        '--from',
        FRONTEND,
        '--path',
        '/',
      );
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(`${file}: rules[0] "ops-admin" from.ids[0]: ${foreign} is in trust domain other.org`);
      expect(r.stderr).toContain('[MESHAUTH_ERR_POLICY_INVALID]');
    });

    it('ok/without --trust-domain the same file is tested', async () => {
      const file = join(scratch, 'test-foreign-unchecked.yaml');
      await writeFile(file, text);
      const r = await meshauth('policy', 'test', file, '--from', FRONTEND, '--path', '/admin/x');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^deny: rule "default-deny"/);
    });

    // The rules were checked against --trust-domain, the caller was not: a --from of another trust domain got a
    // decision for a peer that sidecar refuses in the TLS handshake, before any rule runs.
    it('fail/a --from of another trust domain exits 2 naming the flag, the ID and both trust domains', async () => {
      const r = await meshauth(
        'policy',
        'test',
        POLICY,
        '--trust-domain',
        'example.org',
        '--from',
        foreign,
        '--path',
        '/admin/x',
      );
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(
        `meshauth: --from ${foreign} is in trust domain other.org, not example.org (--trust-domain): no peer of ` +
          'another trust domain is ever accepted (meshauth has no federation), so a sidecar of example.org refuses ' +
          'it before any rule runs: give a --from in example.org, or the --trust-domain of the mesh it is in ' +
          '[MESHAUTH_ERR_USAGE]\n',
      );
    });

    // In a cases table, such a case is decided as that sidecar decides it: denied before any rule runs. The shipped
    // table holds one on purpose; one expecting an allow fails instead of passing on rules no such request reaches.
    it('fail/a case from another trust domain expecting allow fails: denied before any rule, exit 1', async () => {
      const cases = join(scratch, 'foreign.cases.yaml');
      await writeFile(
        cases,
        'cases:\n  - name: frontend reads\n    from: spiffe://example.org/ns/shop/sa/frontend\n    method: GET\n' +
          '    path: /healthz\n    expect: allow\n' +
          `  - name: ops from elsewhere\n    from: ${foreign}\n    method: GET\n    path: /healthz\n    expect: allow\n`,
      );
      const r = await meshauth('policy', 'test', POLICY, '--cases', cases, '--trust-domain', 'example.org');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(1);
      expect(r.stdout).toBe(
        'PASS frontend reads: allow (health)\n' +
          'FAIL ops from elsewhere: expected allow, got deny (MESHAUTH_ERR_SVID_TRUST_DOMAIN)\n' +
          '2 cases: 1 passed, 1 failed\n',
      );
    });

    it('ok/without --trust-domain a --from of any trust domain is tested', async () => {
      const r = await meshauth('policy', 'test', POLICY, '--from', foreign, '--path', '/admin/x');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^deny: rule "/);
    });

    it('ok/the shipped example passes its cases in trust domain example.org', async () => {
      const r = await meshauth('policy', 'test', POLICY, '--cases', CASES, '--trust-domain', 'example.org');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^(\d+) cases: \1 passed, 0 failed$/m);
      expect(r.stdout).toContain('PASS other trust domains may not: deny (MESHAUTH_ERR_SVID_TRUST_DOMAIN)\n');
    });

    it('fail/an invalid trust domain name exits 2 before reading any file', async () => {
      const missing = join(scratch, 'never-read.yaml');
      const r = await meshauth(
        'policy',
        'test',
        missing,
        '--trust-domain',
        'Example.org',
        '--from',
        FRONTEND,
        '--path',
        '/',
      );
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain('[MESHAUTH_ERR_TRUST_DOMAIN_INVALID]');
      expect(r.stderr).not.toContain('never-read.yaml');
    });
  });

  it('fail/test --cases naming no file says it is the cases file that cannot be read', async () => {
    const missing = join(scratch, 'nosuch.cases.yaml');
    const r = await meshauth('policy', 'test', POLICY, '--cases', missing);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`meshauth: cannot read cases file ${missing}: ENOENT [MESHAUTH_ERR_FILE_UNREADABLE]\n`);
  });

  it('ok/test --json gives the decision, the deciding rule and a trace of every rule', async () => {
    const r = await meshauth(
      'policy',
      'test',
      POLICY,
      '--from',
      FRONTEND,
      '--method',
      'GET',
      '--path',
      '/orders/42',
      '--user',
      '{"sub":"alice","scope":"orders:read"}',
      '--chain',
      'spiffe://example.org/ns/edge/sa/gateway',
      '--json',
    );
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { decision: string; rule: string; trace: { rule: string; matched: boolean }[] };
    expect(out).toMatchObject({ decision: 'allow', rule: 'frontend-read-orders' });
    expect(out.trace).toHaveLength(7);
    expect(out.trace.find((t) => t.rule === 'frontend-read-orders')?.matched).toBe(true);
  });

  it('ok/test exits 0 on a deny and explains the misses', async () => {
    const r = await meshauth('policy', 'test', POLICY, '--from', FRONTEND, '--path', '/orders/../admin/x');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^deny: rule "admin-only-from-ops"/);
    expect(r.stdout).toContain('request: GET /admin/x from');
    expect(r.stdout).toContain('to.paths: got /admin/x, expected one of ["/healthz"]');
  });

  it('ok/test reports an ambiguous path as the 400 the sidecar would send', async () => {
    const r = await meshauth('policy', 'test', POLICY, '--from', FRONTEND, '--path', '/admin%2Fx', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      decision: 'reject',
      status: 400,
      code: 'MESHAUTH_ERR_PATH_AMBIGUOUS',
      reason: 'encoded_slash',
    });
  });

  it.each([
    ['an empty label', 'orders.shop.svc..'],
    ['a port out of range', 'orders.shop.svc:99999'],
    ['userinfo', 'frontend@orders.shop.svc'],
  ])('fail/test reports a --host with %s as the 400 the sidecar would send', async (_name, host) => {
    const r = await meshauth('policy', 'test', POLICY, '--from', FRONTEND, '--path', '/', '--host', host, '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      decision: 'reject',
      status: 400,
      code: 'MESHAUTH_ERR_BAD_REQUEST',
      reason: 'host_invalid',
    });
  });

  it.each([
    ['fail/bad SPIFFE ID', ['--from', 'frontend', '--path', '/'], 'MESHAUTH_ERR_SPIFFE_ID_INVALID'],
    ['fail/bad --user JSON', ['--from', FRONTEND, '--path', '/', '--user', '{'], 'MESHAUTH_ERR_USAGE'],
    ['fail/bad --header', ['--from', FRONTEND, '--path', '/', '--header', 'novalue'], 'MESHAUTH_ERR_USAGE'],
    ['fail/missing --path', ['--from', FRONTEND], 'MESHAUTH_ERR_USAGE'],
  ])('%s exits 2', async (_name, args, code) => {
    const r = await meshauth('policy', 'test', POLICY, ...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(code);
  });

  // `--port "$PORT"` with PORT unset, or a port in another base: Number() made them 0 and 8080, and the dry run
  // answered for a port nobody typed.
  it.each(['', '0x1f90', '8.08e3', ' 8080'])('fail/test --port %j → exit 2 MESHAUTH_ERR_USAGE', async (port) => {
    const r = await meshauth('policy', 'test', POLICY, '--from', FRONTEND, '--path', '/orders/1', '--port', port);
    expect(r.code, r.stdout).toBe(2);
    expect(r.stderr).toBe(`meshauth: --port expects 0–65535, got ${JSON.stringify(port)} [MESHAUTH_ERR_USAGE]\n`);
    expect(r.stdout).toBe('');
  });
});
