// Issue 4: the sidecar watches its policy file; a valid change applies while requests flow (no request fails
// with anything but the decisions the policies ask for); an invalid change is logged and counted and the old
// policy stays. Real sidecars, real file, real watcher.
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { startApp, startTestSidecar, type TestApp, type TestSidecar } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

const TD = 'example.org';
const A = `spiffe://${TD}/ns/shop/sa/a`;
const B = `spiffe://${TD}/ns/shop/sa/b`;
let ca: TestCa;
let dir: string;
let policyFile: string;
let app: TestApp;
let a: TestSidecar;
let b: TestSidecar;

function policy(paths: string[]): string {
  return [
    'apiVersion: meshauth.dev/v1',
    'kind: Policy',
    'rules:',
    '  - name: a-may-read',
    '    action: allow',
    `    from: { ids: ["${A}"] }`,
    `    to: { methods: [GET], paths: [${paths.map((p) => JSON.stringify(p)).join(', ')}] }`,
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
});
