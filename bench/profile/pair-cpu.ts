// The sidecar pair's cost per request, alone: the bench app, a CA-less meshauth pair with the bench SVIDs
// (bench/meshauth-pair.ts) and one closed-loop window from a separate process (bench/load.ts: wrk, else
// autocannon). Prints CPU µs per request of each sidecar from /proc/<pid>/stat over the window (stable on a busy
// machine, unlike req/s), idle RSS before the load and peak RSS after. `--cpu-prof DIR` starts both sidecars with
// the V8 profiler on (MESHAUTH_BENCH_CPU_PROF) so DIR gets one .cpuprofile per sidecar on exit; `--heap-prof DIR`
// likewise samples what they allocate (MESHAUTH_BENCH_HEAP_PROF, one .heapprofile each, collected objects included).
// `--rate N` adds, after the closed-loop windows, one open-loop window at N req/s (16 connections) straight to the
// app and one through the pair from one warmed generator (bench/load.ts's baseline), and prints the p99 the pair adds (the fixed-rate target's number) and each sidecar's
// CPU per request at that rate. MESHAUTH_BENCH_NODE_ARGS (V8 flags) and MESHAUTH_BENCH_LOOP_LOG (GC pauses,
// event-loop delay and the peak RSS split by heap space, per sidecar) reach the sidecars through
// bench/meshauth-pair.ts.
// Run: `node dist/bench/profile/pair-cpu.js [--seconds 5] [--connections 32] [--runs 3] [--cpu-prof DIR] [--heap-prof DIR]
// [--rate N]`.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBenchPki } from '../bench-pki.js';
import { firstJsonLine, installCleanup, spawnChild, stopAll } from '../children.js';
import { closedLoopTool, runLoad } from '../load.js';
import { MESH_HOST, startMeshauthPair } from '../meshauth-pair.js';
import { memoryKiB } from '../proc-memory.js';

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(name);
  return index >= 0 ? (process.argv[index + 1] ?? fallback) : fallback;
}

const seconds = Number(option('--seconds', '5'));
const connections = Number(option('--connections', '32'));
const runs = Number(option('--runs', '3'));
const profileDir = option('--cpu-prof', '');
const heapDir = option('--heap-prof', '');
const rate = Number(option('--rate', '0'));

installCleanup();
const dir = await mkdtemp(join(tmpdir(), 'meshauth-profile-'));
try {
  const pki = await createBenchPki(dir);
  const app = spawnChild('app', process.execPath, [fileURLToPath(new URL('../app.js', import.meta.url))]);
  const { port: appPort } = await firstJsonLine<{ port: number }>(app, 10_000);
  // Children inherit the environment: only the sidecars are started while it asks for a profile.
  if (profileDir !== '') process.env.MESHAUTH_BENCH_CPU_PROF = resolve(profileDir);
  if (heapDir !== '') process.env.MESHAUTH_BENCH_HEAP_PROF = resolve(heapDir);
  const pair = await startMeshauthPair({ dir, pki, appPort });
  delete process.env.MESHAUTH_BENCH_CPU_PROF;
  delete process.env.MESHAUTH_BENCH_HEAP_PROF;
  try {
    await new Promise((done) => setTimeout(done, 2000));
    const idle = [pair.outboundPid, pair.inboundPid].map((pid) => Math.round(memoryKiB(pid).rss / 102.4) / 10);
    console.log(
      `tool ${closedLoopTool()}, ${connections} connections, ${seconds} s, idle RSS out/in ${idle.join(' / ')} MiB`,
    );
    for (let run = 0; run < runs; run++) {
      const load = await runLoad(
        { url: pair.url, host: MESH_HOST, mode: 'closed', connections, warmupSec: 1, durationSec: seconds },
        [pair.outboundPid, pair.inboundPid],
      );
      const perRequest = (pid: number) => Math.round(((load.cpuUs.get(pid) ?? 0) / load.requests) * 10) / 10;
      const peak = [pair.outboundPid, pair.inboundPid].map((pid) => Math.round(memoryKiB(pid).hwm / 102.4) / 10);
      console.log(
        JSON.stringify({
          requests: load.requests,
          rps: Math.round(load.rps),
          cpuUsOut: perRequest(pair.outboundPid),
          cpuUsIn: perRequest(pair.inboundPid),
          p50Ms: load.p50Ms,
          p99Ms: load.p99Ms,
          failed: load.errors + load.non2xx,
          peakRssMiB: peak,
        }),
      );
    }
    if (rate > 0) {
      const through = await runLoad(
        {
          url: pair.url,
          baselineUrl: `http://127.0.0.1:${appPort}/`,
          host: MESH_HOST,
          mode: 'rate',
          connections: 16,
          warmupSec: 1,
          durationSec: seconds,
          rate,
        },
        [pair.outboundPid, pair.inboundPid],
      );
      const direct = through.baseline ?? { p50Ms: Number.NaN, p99Ms: Number.NaN };
      const round = (ms: number) => Math.round(ms * 1000) / 1000;
      console.log(
        JSON.stringify({
          rate,
          directP50Ms: round(direct.p50Ms),
          directP99Ms: round(direct.p99Ms),
          pairP50Ms: round(through.p50Ms),
          pairP99Ms: round(through.p99Ms),
          p99AddedMs: round(through.p99Ms - direct.p99Ms),
          cpuUsOut: Math.round((through.cpuUs.get(pair.outboundPid) ?? 0) / Math.max(1, through.requests)),
          cpuUsIn: Math.round((through.cpuUs.get(pair.inboundPid) ?? 0) / Math.max(1, through.requests)),
          failed: through.errors + through.non2xx,
        }),
      );
    }
  } finally {
    await pair.stop();
    await app.stop();
  }
} finally {
  await stopAll();
  await rm(dir, { recursive: true, force: true });
}
