// Where the sidecar pair's CPU per request goes, by subtraction: in one run, the same closed-loop wrk load through
// HAProxy, the meshauth pair and the reference proxies of floor-proxy.ts (bytes only; Node's llhttp with the head
// rewritten; node:http/https; node:http + node:http2), each a pair of processes with the bench SVIDs in front of
// the bench app (`meshauth-h1`: the meshauth pair with HTTP/1.1 between the sidecars). Modes alternate R times; the medians of CPU µs per request (out / in, /proc/<pid>/stat over the
// window) are printed as a table.
// Run: `node dist/bench/profile/floor.js [--seconds 6] [--runs 3] [--connections 32] [--modes haproxy,pipe,…]`.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BenchPki, createBenchPki } from '../bench-pki.js';
import { firstJsonLine, installCleanup, spawnChild, stopAll } from '../children.js';
import { runLoad } from '../load.js';
import { MESH_HOST, startMeshauthPair } from '../meshauth-pair.js';
import { type ProxyPair, startHaproxyPair } from '../peers.js';
import type { FloorMode, FloorProxySpec } from './floor-proxy.js';

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(name);
  return index >= 0 ? (process.argv[index + 1] ?? fallback) : fallback;
}

const seconds = Number(option('--seconds', '6'));
const runs = Number(option('--runs', '3'));
const connections = Number(option('--connections', '32'));
const modes = option('--modes', 'haproxy,pipe,lean,node-h1,node-h2,meshauth').split(',');
// Open-loop requests per second for one more window per mode (16 connections), and one straight to the app per run:
// the p99 each pair adds at a fixed rate. 0 skips it.
const rate = Number(option('--rate', '1000'));
const PROXY = fileURLToPath(new URL('./floor-proxy.js', import.meta.url));

async function startFloorPair(mode: FloorMode, pki: BenchPki, appPort: number): Promise<ProxyPair> {
  const spawnProxy = async (spec: FloorProxySpec) => {
    const child = spawnChild(`${mode}-${spec.role}`, process.execPath, [PROXY, JSON.stringify(spec)]);
    return { child, port: (await firstJsonLine<{ port: number }>(child, 10_000)).port };
  };
  const inbound = await spawnProxy({ mode, role: 'in', target: appPort, files: pki.serverFiles, caFile: pki.caFile });
  const outbound = await spawnProxy({
    mode,
    role: 'out',
    target: inbound.port,
    files: pki.clientFiles,
    caFile: pki.caFile,
  });
  return {
    name: mode,
    url: `http://127.0.0.1:${outbound.port}/`,
    outboundPid: outbound.child.pid,
    inboundPid: inbound.child.pid,
    version: `node ${process.version}`,
    stop: async () => {
      await Promise.all([outbound.child.stop(), inbound.child.stop()]);
    },
  };
}

interface Sample {
  readonly rps: number;
  readonly out: number;
  readonly in: number;
  readonly p99Ms: number;
  readonly p99AddedMs: number;
  readonly failed: number;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
};

installCleanup();
const dir = await mkdtemp(join(tmpdir(), 'meshauth-floor-'));
const samples = new Map<string, Sample[]>(modes.map((mode) => [mode, []]));
try {
  const pki = await createBenchPki(dir);
  const app = spawnChild('app', process.execPath, [fileURLToPath(new URL('../app.js', import.meta.url))]);
  const { port: appPort } = await firstJsonLine<{ port: number }>(app, 10_000);
  const fixedRate = (url: string, watch: readonly number[]) =>
    runLoad({ url, host: MESH_HOST, mode: 'rate', connections: 16, warmupSec: 1, durationSec: seconds, rate }, watch);
  for (let run = 0; run < runs; run++) {
    const directP99Ms = rate > 0 ? (await fixedRate(`http://127.0.0.1:${appPort}/`, [])).p99Ms : 0;
    for (const mode of modes) {
      const options = { dir, pki, appPort };
      const pair =
        mode === 'haproxy'
          ? await startHaproxyPair(options)
          : mode === 'meshauth' || mode === 'meshauth-h1'
            ? await startMeshauthPair(options, process.execPath, mode === 'meshauth')
            : await startFloorPair(mode as FloorMode, pki, appPort);
      try {
        const load = await runLoad(
          { url: pair.url, host: MESH_HOST, mode: 'closed', connections, warmupSec: 2, durationSec: seconds },
          [pair.outboundPid, pair.inboundPid],
        );
        const perRequest = (pid: number) => (load.cpuUs.get(pid) ?? 0) / Math.max(1, load.requests);
        const fixed = rate > 0 ? await fixedRate(pair.url, []) : undefined;
        const sample = {
          rps: load.rps,
          out: perRequest(pair.outboundPid),
          in: perRequest(pair.inboundPid),
          p99Ms: load.p99Ms,
          p99AddedMs: fixed === undefined ? 0 : fixed.p99Ms - directP99Ms,
          failed: load.errors + load.non2xx + (fixed === undefined ? 0 : fixed.errors + fixed.non2xx),
        };
        samples.get(mode)?.push(sample);
        console.log(JSON.stringify({ run, mode, ...sample }));
      } finally {
        await pair.stop();
      }
    }
  }
  console.log(
    `\n| pair | req/s | CPU µs/request out / in | out + in | p99 ms at ${connections} connections | p99 added at ${rate} req/s (ms) | failed |`,
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const [mode, list] of samples) {
    const out = median(list.map((s) => s.out));
    const inbound = median(list.map((s) => s.in));
    console.log(
      `| ${mode} | ${Math.round(median(list.map((s) => s.rps)))} | ${out.toFixed(1)} / ${inbound.toFixed(1)} | ${(
        out + inbound
      ).toFixed(
        1,
      )} | ${median(list.map((s) => s.p99Ms)).toFixed(2)} | ${median(list.map((s) => s.p99AddedMs)).toFixed(2)} | ${list.reduce((n, s) => n + s.failed, 0)} |`,
    );
  }
} finally {
  await stopAll();
  await rm(dir, { recursive: true, force: true });
}
