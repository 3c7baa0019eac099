// A fleet started at once (a cluster restart) must not fetch the trust bundle in step: each agent's first refresh
// falls at a random point of its interval, so the CA sees the fetches spread over it instead of one burst of every
// agent each interval. 100 real Agents against a real CA, the fetches seen on node:http's diagnostics channel.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CaServer, startCaServer } from '../../src/ca/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { makeCaDir } from '../helpers/ca-dir.js';
import {
  busiestBucketPercent,
  type Fleet,
  type ReviewedFleetCluster,
  recordSvidTraffic,
  reviewedFleetCluster,
  startFleet,
} from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';

const AGENTS = 100;
const REFRESH_MS = 4_000;
let ca: Awaited<ReturnType<typeof makeCaDir>>;
let server: CaServer;
let fleet: Fleet | undefined;
let tokenFiles: string[];
let cluster: ReviewedFleetCluster;

beforeAll(async () => {
  ca = await makeCaDir();
  cluster = await reviewedFleetCluster(join(ca.dir, '..'));
  tokenFiles = await cluster.tokenFiles(AGENTS, 'wl');
  server = await startCaServer({
    dir: ca.dir,
    listen: '127.0.0.1:0',
    svidTtlMs: 10 * 60_000,
    kubernetes: cluster.kubernetes,
    workers: 0,
    logger: silentLogger(),
    metrics: new Metrics(),
  });
});

afterAll(async () => {
  await fleet?.close();
  await server?.close();
  await cluster?.close();
  ca?.cleanup();
});

describe('trust bundle refresh of a fleet started at once', () => {
  it('ok/the first fetches are spread over the interval, not one burst', async () => {
    const traffic = recordSvidTraffic();
    const fetchedBy = () => new Set(traffic.bundleFetches.map((f) => f.agent)).size;
    try {
      fleet = startFleet({
        caUrl: server.url,
        bundleFile: join(ca.dir, 'bundle.pem'),
        tokenFiles,
        bundleRefreshMs: REFRESH_MS,
      });
      const current = fleet;
      await waitFor('every agent holding an SVID', () => current.ready() === AGENTS, 60_000);
      await waitFor('every agent fetched the bundle', () => fetchedBy() === AGENTS, 60_000);
    } finally {
      traffic.stop();
    }
    const first = new Map<string, number>();
    for (const { agent, at } of traffic.bundleFetches) if (!first.has(agent)) first.set(agent, at);
    // In step, every agent's first fetch would land in one or two 100 ms buckets (REFRESH_MS after the start);
    // spread over the 4 s interval each bucket holds a few per cent.
    expect(busiestBucketPercent([...first.values()])).toBeLessThan(25);
  }, 150_000);
});
