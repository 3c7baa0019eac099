// benchProxy: the headline performance number for the sidecar data path alone — direct vs through a meshauth
// outbound+inbound pair (two sidecar processes, TLS 1.3 mTLS, h2 between them), loaded by wrk (autocannon without it) in its own
// process (keep-alive, fixed connections, warm-up). CPU per request comes from each sidecar process's own
// accounting (/proc/<pid>/stat, all threads) over the measured window. Reuses the runner's children/load/PKI
// helpers, so `npm run bench` and this function measure the same way. Run alone: `node dist/bench/proxy.js`.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createBenchPki } from './bench-pki.js';
import { firstJsonLine, installCleanup, spawnChild, stopAll } from './children.js';
import { type LoadSpec, runLoad } from './load.js';
import { MESH_HOST, startMeshauthPair } from './meshauth-pair.js';
import { memoryKiB } from './proc-memory.js';

export interface ProxyBenchRow {
  readonly scenario: 'direct' | 'meshauth';
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** p50 at one connection (unloaded latency). */
  readonly c1P50Ms: number;
  readonly cpuUsPerReqOutbound?: number;
  readonly cpuUsPerReqInbound?: number;
  /** Peak RSS of the busier sidecar. */
  readonly rssMiB?: number;
  readonly errors: number;
}

export async function benchProxy(options: { quick: boolean }): Promise<ProxyBenchRow[]> {
  const warmupSec = options.quick ? 1 : 2;
  const durationSec = options.quick ? 3 : 10;
  const connections = 32;
  const dir = await mkdtemp(join(tmpdir(), 'meshauth-bench-proxy-'));
  const rows: ProxyBenchRow[] = [];
  try {
    const pki = await createBenchPki(dir);
    const app = spawnChild('app', process.execPath, [fileURLToPath(new URL('./app.js', import.meta.url))]);
    const { port: appPort } = await firstJsonLine<{ port: number }>(app, 10_000);
    for (const scenario of ['direct', 'meshauth'] as const) {
      const pair = scenario === 'meshauth' ? await startMeshauthPair({ dir, pki, appPort }) : undefined;
      try {
        const url = pair?.url ?? `http://127.0.0.1:${appPort}/`;
        const pids = pair === undefined ? [] : [pair.outboundPid, pair.inboundPid];
        const spec = (c: number, seconds: number): LoadSpec => ({
          url,
          host: MESH_HOST,
          mode: 'closed',
          connections: c,
          warmupSec,
          durationSec: seconds,
        });
        const load = await runLoad(spec(connections, durationSec), pids);
        const single = await runLoad(spec(1, Math.max(2, Math.round(durationSec / 3))), pids);
        const perReq = (pid: number | undefined) =>
          pid === undefined || load.requests === 0 ? undefined : (load.cpuUs.get(pid) ?? 0) / load.requests;
        const out = perReq(pids[0]);
        const inb = perReq(pids[1]);
        rows.push({
          scenario,
          rps: Math.round(load.rps),
          p50Ms: load.p50Ms,
          p99Ms: load.p99Ms,
          c1P50Ms: single.p50Ms,
          errors: load.errors + load.non2xx,
          ...(out === undefined ? {} : { cpuUsPerReqOutbound: Math.round(out * 10) / 10 }),
          ...(inb === undefined ? {} : { cpuUsPerReqInbound: Math.round(inb * 10) / 10 }),
          ...(pids.length === 0
            ? {}
            : { rssMiB: Math.round(Math.max(...pids.map((pid) => memoryKiB(pid).hwm)) / 1024) }),
        });
      } finally {
        await pair?.stop();
      }
    }
    await app.stop();
  } finally {
    await stopAll();
    await rm(dir, { recursive: true, force: true });
  }
  return rows;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  installCleanup();
  const rows = await benchProxy({ quick: process.argv.includes('--quick') });
  console.table(rows);
  process.stdout.write(`${JSON.stringify(rows)}\n`);
}
