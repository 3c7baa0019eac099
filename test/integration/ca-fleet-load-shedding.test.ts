// Load shedding (`ca serve --max-queue`): with every signing slot busy and the queue full, the CA answers the next
// POST /v1/svid with 429 MESHAUTH_ERR_CA_OVERLOADED and Retry-After at once, counts it, logs the first refusal of
// its 10 s (the rest counted in meshauth_log_lines_suppressed_total), and keeps serving the bundle; when the slots
// free up it admits and signs again (on its worker threads).
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caRetryAfterMsOf, caStatusOf, fetchBundle, requestSvid } from '../../src/agent/ca-client.js';
import { type CaServer, loadCaMaterial, startCaServer } from '../../src/ca/index.js';
import { TrustDomain } from '../../src/identity/index.js';
import {
  createCsrPem,
  exportPrivateKeyPem,
  generateKeyPair,
  parseCertificatesPem,
  uriSans,
} from '../../src/pki/index.js';
import { Metrics } from '../../src/telemetry/index.js';
import { makeCaDir } from '../helpers/ca-dir.js';
import { caRejections } from '../helpers/ca-metrics.js';
import { holdSigningSlots, queueDepthOf, type ReviewedFleetCluster, reviewedFleetCluster } from '../helpers/fleet.js';
import { type LogLines, logLines } from '../helpers/log-lines.js';
import { waitFor } from '../helpers/wait.js';

const TD = TrustDomain.parse('example.org');
/** 8 requests in progress per worker (load-shedding.ts) plus the queue. */
const WORKERS = 1;
const MAX_QUEUE = 3;
const CAPACITY = 8 * WORKERS + MAX_QUEUE;
let ca: Awaited<ReturnType<typeof makeCaDir>>;
let server: CaServer;
let metrics: Metrics;
let bundlePem: string;
let tokens: string[];
let logs: LogLines;
let cluster: ReviewedFleetCluster;

beforeAll(async () => {
  ca = await makeCaDir();
  bundlePem = (await loadCaMaterial(ca.dir)).bundle.toPem();
  cluster = await reviewedFleetCluster(join(ca.dir, '..'));
  tokens = await cluster.tokens(5, 'burst');
  metrics = new Metrics();
  logs = logLines('ca', 'info');
  server = await startCaServer({
    dir: ca.dir,
    listen: '127.0.0.1:0',
    svidTtlMs: 10 * 60_000,
    kubernetes: cluster.kubernetes,
    maxQueue: MAX_QUEUE,
    workers: WORKERS,
    logger: logs.logger,
    metrics,
  });
});

afterAll(async () => {
  await server?.close();
  await cluster?.close();
  ca?.cleanup();
});

describe('a full signing queue', () => {
  it('ok/the next requests get 429 + Retry-After (1–30 s), the counter and one log line (the rest suppressed); the bundle is still served; freed slots sign again', async () => {
    const connection = { caUrl: server.url, trustDomain: TD, bundlePem };
    // An SVID from before the storm, to ask the token endpoint during it.
    const clientKeys = await generateKeyPair('p256');
    const client = await requestSvid(connection, {
      csrPem: await createCsrPem(clientKeys),
      token: tokens[3] as string,
    });
    const held = await holdSigningSlots(server.url, bundlePem, cluster, await cluster.tokens(CAPACITY, 'hold'), () =>
      queueDepthOf(metrics),
    );
    try {
      const refused = await Promise.allSettled(
        tokens
          .slice(0, 3)
          .map(async (token) =>
            requestSvid(connection, { csrPem: await createCsrPem(await generateKeyPair('p256')), token }),
          ),
      );
      for (const r of refused) {
        expect(r.status).toBe('rejected');
        if (r.status !== 'rejected') continue;
        expect(caStatusOf(r.reason)).toBe(429);
        const retryAfterMs = caRetryAfterMsOf(r.reason) ?? -1;
        expect(retryAfterMs).toBeGreaterThanOrEqual(1000);
        expect(retryAfterMs).toBeLessThanOrEqual(30_000);
        expect(String((r.reason as Error).message)).toContain('MESHAUTH_ERR_CA_OVERLOADED');
      }
      // Read-only endpoints are never shed.
      expect((await fetchBundle(connection)).bundlePem.length).toBeGreaterThan(0);
      const text = await metrics.exposition();
      expect(text).toContain('meshauth_ca_requests_rejected_total{reason="overloaded"} 3');
      // The first refusal is logged; the two after it, inside the same 10 s, are counted and not logged.
      const lines = logs.find({ event: 'ca_overloaded', code: 'MESHAUTH_ERR_CA_OVERLOADED' });
      expect(lines).toHaveLength(1);
      expect(lines[0]).not.toHaveProperty('refused');
      expect(text).toContain('meshauth_log_lines_suppressed_total{event="ca_overloaded"} 2');
      // The token endpoint's refusal is in the OAuth form its clients read, as its other errors are.
      const token = await postToken(client.certChainPem.join(''), await exportPrivateKeyPem(clientKeys.privateKey));
      expect(token.status).toBe(429);
      expect(Number(token.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(JSON.parse(token.body)).toMatchObject({
        error: 'temporarily_unavailable',
        code: 'MESHAUTH_ERR_CA_OVERLOADED',
      });
    } finally {
      held.release();
    }
    await waitFor('an empty CA queue', async () => (await queueDepthOf(metrics)) === 0, 10_000, 20);
    const answer = await requestSvid(connection, {
      csrPem: await createCsrPem(await generateKeyPair('p256')),
      token: tokens[4] as string,
    });
    const [leaf] = parseCertificatesPem(answer.certChainPem.join(''));
    expect(leaf === undefined ? undefined : uriSans(leaf)[0]).toBe('spiffe://example.org/ns/fleet/sa/burst-4');
  });
});

/** POST /v1/token with a client-credentials form, authenticated by the given SVID. */
function postToken(certPem: string, keyPem: string): Promise<{ status: number; retryAfter: string; body: string }> {
  const form = 'grant_type=client_credentials&audience=https%3A%2F%2Fapi.example.org';
  return new Promise((resolve, reject) => {
    const req = httpsRequest(new URL('/v1/token', server.url), {
      method: 'POST',
      ca: bundlePem,
      cert: certPem,
      key: keyPem,
      checkServerIdentity: () => undefined,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(form.length) },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, retryAfter: String(res.headers['retry-after']), body }),
      );
    });
    req.end(form);
  });
}

describe('request bodies that trickle', () => {
  it('fail/bodies still arriving take no signing place: sixteen stalled uploads leave the queue empty and a client is served', async () => {
    const url = new URL('/v1/svid', server.url);
    // Each announces 1,000 bytes, sends ten and stalls, as a client trickling its body to hold a place would.
    const stalled = Array.from({ length: 16 }, () => {
      const req = httpsRequest(url, {
        method: 'POST',
        ca: bundlePem,
        checkServerIdentity: () => undefined,
        headers: { 'content-type': 'application/json', 'content-length': '1000' },
      });
      req.on('error', () => {});
      req.write('{"csr":"xx');
      return req;
    });
    try {
      const before = await rejectedOverloaded();
      const connection = { caUrl: server.url, trustDomain: TD, bundlePem };
      const [token] = await cluster.tokens(1, 'trickle');
      const answer = await requestSvid(connection, {
        csrPem: await createCsrPem(await generateKeyPair('p256')),
        token: token as string,
      });
      expect(answer.certChainPem.length).toBeGreaterThan(0);
      expect(await queueDepthOf(metrics)).toBe(0);
      expect(await rejectedOverloaded()).toBe(before);
    } finally {
      for (const req of stalled) req.destroy();
    }
    // A body cut short is a rejection of its own (not an internal error): counted once per request.
    await waitFor('the cut bodies to be counted', async () => (await rejected('body_incomplete')) === 16, 5000);
  });
});

const rejected = (reason: string): Promise<number> => caRejections(metrics, reason);

const rejectedOverloaded = () => rejected('overloaded');
