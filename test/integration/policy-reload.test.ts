// Issue 4: the sidecar watches its policy file; a valid change applies while requests flow (no request fails
// with anything but the decisions the policies ask for); an invalid change is logged and counted and the old
// policy stays. A change to a rule on another trust domain's IDs (which no peer can ever have: an allow that never
// matches, a notIds entry that spares nobody) is refused the same way, naming the rule and field. Real sidecars, real
// file, real watcher.
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { type CapturedLog, captureLogger } from '../helpers/fault-harness.js';
import { startApp, startTestSidecar, type TestApp, type TestSidecar } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

const TD = 'example.org';
const A = `spiffe://${TD}/ns/shop/sa/a`;
const B = `spiffe://${TD}/ns/shop/sa/b`;
const FOREIGN = 'spiffe://other.org/ns/ops/sa/admin';
let ca: TestCa;
let dir: string;
let policyFile: string;
let app: TestApp;
let a: TestSidecar;
let b: TestSidecar;
let logB: CapturedLog;

/** A may GET `paths`; `extra` rules follow. */
function policy(paths: readonly string[], extra: readonly string[] = []): string {
  return [
    'apiVersion: meshauth.dev/v1',
    'kind: Policy',
    'rules:',
    '  - name: a-may-read',
    '    action: allow',
    `    from: { ids: ["${A}"] }`,
    `    to: { methods: [GET], paths: [${paths.map((p) => JSON.stringify(p)).join(', ')}] }`,
    ...extra,
  ].join('\n');
}

/** Writes atomically, as editors and ConfigMap updates do. */
function writePolicy(text: string): void {
  const tmp = `${policyFile}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, policyFile);
}

beforeAll(async () => {
  ca = await TestCa.create(TD);
  dir = mkdtempSync(join(tmpdir(), 'meshauth-reload-'));
  policyFile = join(dir, 'policy.yaml');
  writePolicy(policy(['/v1/*']));
  app = await startApp();
  const base = {
    trustDomain: TD,
    ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent', token: '/nonexistent' },
    admin: { listen: '127.0.0.1:0' },
  };
  logB = captureLogger('sidecar');
  b = await startTestSidecar(
    ca,
    B,
    sidecarConfigFromObject(
      {
        ...base,
        inbound: { listen: '127.0.0.1:0', app: `127.0.0.1:${app.port}`, policy: policyFile },
        outbound: { listen: '127.0.0.1:0' },
      },
      'reload-test-b',
    ),
    { logger: logB.logger },
  );
  a = await startTestSidecar(
    ca,
    A,
    sidecarConfigFromObject(
      {
        ...base,
        inbound: { listen: '127.0.0.1:0', app: '127.0.0.1:1' },
        outbound: {
          listen: '127.0.0.1:0',
          routes: { 'b.mesh': { address: `127.0.0.1:${b.sidecar.inboundPort}`, ids: [B] } },
        },
      },
      'reload-test-a',
    ),
  );
});

afterAll(async () => {
  await a?.sidecar.close(0);
  await b?.sidecar.close(0);
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function get(path: string): Promise<number> {
  const response = await request(`http://127.0.0.1:${a.sidecar.outboundPort}${path}`, { headers: { host: 'b.mesh' } });
  await response.body.dump();
  return response.statusCode;
}

async function reloads(result: 'success' | 'failure'): Promise<number> {
  const text = await b.metrics.registry.getSingleMetricAsString('meshauth_policy_reloads_total');
  return Number(new RegExp(`result="${result}"} (\\d+)`).exec(text)?.[1] ?? 0);
}

describe('policy hot reload', () => {
  it('ok/a valid change applies under load and no request fails; an invalid one keeps the old policy', async () => {
    expect(await get('/v1/orders')).toBe(200);
    expect(await get('/v2/orders')).toBe(403);

    // Continuous traffic on a path both policies allow, while the file changes.
    let stop = false;
    const unexpected: number[] = [];
    let sent = 0;
    const load = (async () => {
      for (let i = 0; i < 5000 && !stop; i++) {
        const status = await get('/v1/keep');
        sent++;
        if (status !== 200) unexpected.push(status);
      }
    })();

    writePolicy(policy(['/v1/*', '/v2/*']));
    await waitFor('the new policy to apply', async () => (await get('/v2/orders')) === 200, 10_000);

    writePolicy('apiVersion: meshauth.dev/v1\nkind: Policy\nrules: [ { name: broken, action: maybe } ]\n');
    await waitFor(
      'a failed reload counted',
      async () =>
        (await b.metrics.registry.getSingleMetricAsString('meshauth_policy_reloads_total')).includes(
          'result="failure"',
        ),
      10_000,
    );
    expect(await get('/v2/orders')).toBe(200); // the last valid policy still applies

    stop = true;
    await load;
    expect(sent).toBeGreaterThan(0);
    expect(unexpected).toEqual([]);
  });

  it('ok/a change applies while another file of the directory is written every 20 ms', async () => {
    // Every event of the directory reaches the watcher; each used to restart its 100 ms wait, so a busy sibling (a log,
    // a lock file) held every change back, the periodic check's too, with nothing counted or logged.
    writePolicy(policy(['/v1/*']));
    await waitFor('the starting policy', async () => (await get('/v3/orders')) === 403, 10_000);
    let stop = false;
    const sibling = join(dir, 'busy.log');
    const writer = (async () => {
      for (let i = 0; i < 2_000 && !stop; i++) {
        writeFileSync(sibling, `line ${i}\n`, { flag: 'a' });
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    try {
      writePolicy(policy(['/v1/*', '/v3/*']));
      await waitFor(
        'the change to apply under the busy sibling',
        async () => (await get('/v3/orders')) === 200,
        10_000,
      );
    } finally {
      stop = true;
      await writer;
    }
  });

  it('fail/a change to a rule on another trust domain is refused, counted and logged; the previous policy keeps deciding', async () => {
    writePolicy(policy(['/v1/*']));
    await waitFor('the /v1-only policy to apply', async () => (await get('/v2/orders')) === 403, 10_000);
    const failures = await reloads('failure');
    const successes = await reloads('success');

    // Wider for A (/v2 too), plus a deny meant to spare one foreign caller: it would deny every caller on /admin.
    writePolicy(
      policy(
        ['/v1/*', '/v2/*'],
        [
          '  - name: spare-ops',
          '    action: deny',
          `    from: { notIds: ["${FOREIGN}"] }`,
          '    to: { paths: ["/admin/*"] }',
        ],
      ),
    );
    await waitFor('the refused reload to be counted', async () => (await reloads('failure')) === failures + 1, 10_000);
    expect(await reloads('success')).toBe(successes);
    expect(await get('/v2/orders')).toBe(403); // the new file was not applied
    expect(await get('/v1/orders')).toBe(200); // the previous one still is

    const refused = logB
      .records()
      .filter(
        (r) => r.msg === 'policy reload failed; keeping the previous policy' && String(r.error).includes(FOREIGN),
      );
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({
      level: 'error',
      component: 'policy',
      file: policyFile,
      code: 'MESHAUTH_ERR_POLICY_INVALID',
    });
    expect(String(refused[0]?.error)).toContain(
      `${policyFile}: rules[1] "spare-ops" from.notIds[0]: ${FOREIGN} is in trust domain other.org, not example.org`,
    );

    // The watcher goes on: the same change without the foreign rule applies.
    writePolicy(policy(['/v1/*', '/v2/*']));
    await waitFor('the valid policy to apply', async () => (await get('/v2/orders')) === 200, 10_000);
    expect(await reloads('success')).toBe(successes + 1);
  });
});
