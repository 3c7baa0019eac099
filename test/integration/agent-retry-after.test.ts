// 200 real Agents bootstrap at once against a CA whose queue is full: the CA sheds them all with 429 + Retry-After,
// the agents wait at least that long plus full jitter, so their retries are spread out (no synchronized wave when
// the CA frees up), and every one of them ends up with an SVID.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CaServer, startCaServer } from '../../src/ca/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { makeCaDir } from '../helpers/ca-dir.js';
import {
  busiestBucketPercent,
  type Fleet,
  holdSigningSlots,
  queueDepthOf,
  type ReviewedFleetCluster,
  recordSvidTraffic,
  reviewedFleetCluster,
  startFleet,
} from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';

const AGENTS = 200;
let ca: Awaited<ReturnType<typeof makeCaDir>>;
let server: CaServer;
let fleet: Fleet | undefined;
let tokenFiles: string[];
let metrics: Metrics;
let cluster: ReviewedFleetCluster;

beforeAll(async () => {
  ca = await makeCaDir();
  cluster = await reviewedFleetCluster(join(ca.dir, '..'));
  tokenFiles = await cluster.tokenFiles(AGENTS, 'wl');
  metrics = new Metrics();
  server = await startCaServer({
    dir: ca.dir,
    listen: '127.0.0.1:0',
    svidTtlMs: 10 * 60_000,
    kubernetes: cluster.kubernetes,
    maxQueue: 4,
    workers: 1,
    logger: silentLogger(),
    metrics,
  });
});

afterAll(async () => {
  await fleet?.close();
  await server?.close();
  await cluster?.close();
  ca?.cleanup();
});

describe('agents under load shedding', () => {
  it('ok/every agent gets its SVID; refusals carry Retry-After; retries are not synchronized', async () => {
    const bundlePem = readFileSync(join(ca.dir, 'bundle.pem'), 'utf8');
    // 8 in progress per worker + the queue of 4: the whole fleet meets a full CA.
    const held = await holdSigningSlots(server.url, bundlePem, cluster, await cluster.tokens(12, 'hold'), () =>
      queueDepthOf(metrics),
    );
    const traffic = recordSvidTraffic();
    try {
      fleet = startFleet({ caUrl: server.url, bundleFile: join(ca.dir, 'bundle.pem'), tokenFiles });
      const current = fleet;
      await waitFor('every agent refused once', () => traffic.refusals.length >= AGENTS, 150_000);
      held.release();
      await waitFor('every agent holding an SVID', () => current.ready() === AGENTS, 120_000);
    } finally {
      held.release();
      traffic.stop();
    }
    expect(traffic.refusals.length).toBeGreaterThan(0);
    expect(traffic.refusals.every((r) => r.retryAfter !== undefined && /^\d+$/.test(r.retryAfter))).toBe(true);
    // Each agent came back no sooner than the CA asked (a few ms of clock granularity aside)…
    expect(traffic.retryDelays.length).toBeGreaterThanOrEqual(AGENTS / 2);
    for (const { delayMs, retryAfterMs } of traffic.retryDelays)
      expect(delayMs).toBeGreaterThanOrEqual(retryAfterMs - 20);
    // …and not all at the same moment after it: without jitter every delay would be Retry-After itself (one bucket).
    expect(busiestBucketPercent(traffic.retryDelays.map((r) => r.delayMs))).toBeLessThan(25);
  }, 330_000);
});
