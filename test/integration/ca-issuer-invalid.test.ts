// A CA whose issuing intermediate is unusable, on a real CA server on 127.0.0.1: at start-up, an intermediate that does
// not chain to bundle.pem or whose key is not its certificate's stops the CA before it listens
// (MESHAUTH_ERR_CA_UNAVAILABLE naming the file); an expired one lets it start but refuses every CSR (503); either way
// `meshauth_ca_issuer_valid` is 0 with one error line. The same files written over a good intermediate while the CA
// runs are not loaded: the last good intermediate signs on (its chain still verifies against the bundle), the gauge
// drops to 0 with one error line (not one a second), and a good rotation brings it back to 1.
// Every test has its own CA directory, server, metrics and log lines, and mostly waits for the CA's once-a-second
// checks and the grace given to files that do not load: the tests run side by side, taking `expect` from their context.
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, it } from 'vitest';
import {
  type CaServer,
  caPaths,
  createJoinToken,
  initCa,
  rotateIntermediate,
  startCaServer,
} from '../../src/ca/index.js';
import { createCsrPem, generateKeyPair } from '../../src/pki/index.js';
import { Metrics } from '../../src/telemetry/index.js';
import { type LogLines, logLines } from '../helpers/log-lines.js';
import { waitFor } from '../helpers/wait.js';

const TD = 'example.org';
const ID = `spiffe://${TD}/ns/shop/sa/web`;
const DAY = 24 * 3_600_000;
// The test reads the CA's answers, not its serving certificate (the chain it returns is checked by hand).
const agent = new Agent({ connect: { rejectUnauthorized: false } });
const cleanups: Array<() => Promise<void> | void> = [];

afterAll(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
  await agent.close();
});

/** A fresh CA directory; `offsetMs` dates its root and 30-day intermediate from now + offset. */
async function caDir(offsetMs = 0): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), 'meshauth-ca-issuer-'));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, 'certs');
  await initCa({ dir, trustDomain: TD, now: new Date(Date.now() + offsetMs) });
  return dir;
}

function start(dir: string): Promise<{ server: CaServer; metrics: Metrics; logs: LogLines }> {
  const metrics = new Metrics();
  const logs = logLines('ca', 'info');
  return startCaServer({
    dir,
    listen: '127.0.0.1:0',
    svidTtlMs: 3_600_000,
    logger: logs.logger,
    metrics,
    workers: 0,
  }).then((server) => {
    cleanups.push(() => server.close());
    return { server, metrics, logs };
  });
}

/** The gauge as Prometheus scrapes it (the CA's exposition), undefined when absent. */
async function issuerValid(metrics: Metrics): Promise<number | undefined> {
  const line = /^meshauth_ca_issuer_valid (\S+)$/m.exec(await metrics.exposition());
  return line === null ? undefined : Number(line[1]);
}

async function csr(server: CaServer, dir: string) {
  const token = await createJoinToken({ dir, id: ID, ttlMs: 60_000 });
  const response = await request(`${server.url}/v1/svid`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ csr: await createCsrPem(await generateKeyPair('p256')), token }),
  });
  return { status: response.statusCode, json: (await response.body.json()) as { certChain?: string[]; code?: string } };
}

/** Copies another CA's intermediate certificate and/or key over `dir`'s. */
function plant(dir: string, foreign: string, files: Array<'intermediateCert' | 'intermediateKey'>): void {
  for (const file of files) copyFileSync(caPaths(foreign)[file], caPaths(dir)[file]);
}

const normalize = (pem: string) => pem.trim();

describe.concurrent('CA issuer unusable at start-up (A13)', () => {
  let foreign: string;
  beforeAll(async () => {
    foreign = await caDir(); // same trust domain, another root
  });

  it.for<[string, readonly ('intermediateCert' | 'intermediateKey')[], string]>([
    [
      'fail/an intermediate that does not chain to bundle.pem',
      ['intermediateCert', 'intermediateKey'],
      'intermediate.crt is not signed by a root in bundle.pem',
    ],
    [
      'fail/an intermediate key that does not match its certificate',
      ['intermediateKey'],
      'intermediate.key does not belong to intermediate.crt',
    ],
  ])(
    '%s → the CA does not start: MESHAUTH_ERR_CA_UNAVAILABLE naming the file',
    async ([_name, files, why], { expect }) => {
      const dir = await caDir();
      plant(dir, foreign, [...files]);
      const started = start(dir);
      await expect(started).rejects.toMatchObject({ code: 'MESHAUTH_ERR_CA_UNAVAILABLE', reason: 'inconsistent' });
      await expect(started).rejects.toThrow(why);
    },
  );

  it('fail/an expired intermediate → every CSR 503 MESHAUTH_ERR_CA_UNAVAILABLE, meshauth_ca_issuer_valid 0, one error line', async ({
    expect,
  }) => {
    const dir = await caDir(-40 * DAY); // the root is valid for years, the 30-day intermediate expired 10 days ago
    const { server, metrics, logs } = await start(dir);
    expect(await issuerValid(metrics)).toBe(0);
    const answer = await csr(server, dir);
    expect(answer.status).toBe(503);
    expect(answer.json.code).toBe('MESHAUTH_ERR_CA_UNAVAILABLE');
    const lines = logs.find({ event: 'ca_issuer_invalid' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'error', reason: 'intermediate_expired' });
  });

  it('ok/a valid intermediate → meshauth_ca_issuer_valid 1, no error line', async ({ expect }) => {
    const dir = await caDir();
    const { server, metrics, logs } = await start(dir);
    expect(await issuerValid(metrics)).toBe(1);
    // The CA's other own gauges are scraped from its start (a sidecar has none of them).
    const text = await metrics.exposition();
    expect(text).toMatch(/^meshauth_ca_queue_depth 0$/m);
    expect(text).toMatch(/^meshauth_ca_connections_waiting 0$/m);
    expect(text).not.toContain('meshauth_svid_expiry_timestamp_seconds');
    expect((await csr(server, dir)).status).toBe(200);
    expect(logs.find({ event: 'ca_issuer_invalid' })).toHaveLength(0);
  });
});

describe.concurrent('CA issuer replaced by an unusable one while running (A13)', () => {
  let foreign: string;
  beforeAll(async () => {
    foreign = await caDir();
  });

  it.for<[string, readonly ('intermediateCert' | 'intermediateKey')[]]>([
    ['fail/an intermediate that does not chain to bundle.pem', ['intermediateCert', 'intermediateKey']],
    ['fail/an intermediate key that does not match its certificate', ['intermediateKey']],
  ])(
    '%s → not loaded: the last good intermediate signs on, meshauth_ca_issuer_valid 0 with one error line, back to 1 after a good rotation',
    async ([_name, files], { expect }) => {
      const dir = await caDir();
      const { server, metrics, logs } = await start(dir);
      const good = normalize(readFileSync(caPaths(dir).intermediateCert, 'utf8'));
      expect(await issuerValid(metrics)).toBe(1);
      plant(dir, foreign, [...files]);
      await waitFor('meshauth_ca_issuer_valid 0', async () => (await issuerValid(metrics)) === 0, 15_000);
      const lines = logs.find({ event: 'ca_issuer_invalid' });
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ level: 'error', reason: 'inconsistent' });
      // Signing goes on with the intermediate that was loaded: its leaves chain to the bundle's root.
      for (let i = 0; i < 3; i++) {
        const answer = await csr(server, dir);
        expect(answer.status).toBe(200);
        expect(normalize(answer.json.certChain?.[1] ?? '')).toBe(good);
      }
      expect(await issuerValid(metrics)).toBe(0);
      expect(logs.find({ event: 'ca_issuer_invalid' })).toHaveLength(1); // once, not once per check
      // A good rotation (a new intermediate under the CA's own root) is loaded and the gauge recovers.
      await rotateIntermediate(dir);
      await waitFor('meshauth_ca_issuer_valid 1', async () => (await issuerValid(metrics)) === 1, 15_000);
      const rotated = normalize(readFileSync(caPaths(dir).intermediateCert, 'utf8'));
      const answer = await csr(server, dir);
      expect(answer.status).toBe(200);
      expect(normalize(answer.json.certChain?.[1] ?? '')).toBe(rotated);
      expect(logs.find({ event: 'ca_issuer_valid' })).toHaveLength(1);
    },
  );
});
