// The meshauth pair for the proxy comparison: two sidecar processes (src/sidecar startSidecar, one each, as the
// CLI runs it but with the bench SVIDs injected into the credential holder instead of fetched from a CA), so the
// runner's one load loop measures meshauth exactly like HAProxy and nginx. Default policy (mTLS only),
// metrics on, logs off. Child entry: `node dist/bench/meshauth-pair.js --sidecar JSON`.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { getHeapSpaceStatistics } from 'node:v8';
import { CredentialHolder } from '../src/agent/credential-holder.js';
import { sidecarConfigFromObject } from '../src/config/index.js';
import { SpiffeId, TrustDomain } from '../src/identity/index.js';
import { TrustBundle, X509Svid } from '../src/pki/index.js';
import { startSidecar } from '../src/sidecar/index.js';
import { Metrics, silentLogger } from '../src/telemetry/index.js';
import { BENCH_TRUST_DOMAIN, type PemFiles } from './bench-pki.js';
import { firstJsonLine, spawnChild } from './children.js';
import { imageNodeFlags, podHeapFlags } from './image-node-flags.js';
import type { PeerOptions, ProxyPair } from './peers.js';
import { memoryKiB } from './proc-memory.js';

/** The host name the load generator sends; the client sidecar routes it to the server sidecar. */
export const MESH_HOST = 'app.bench';

interface SidecarSpec {
  readonly role: 'client' | 'server';
  readonly files: PemFiles;
  readonly id: string;
  readonly caFile: string;
  readonly appPort: number;
  /** Client only: the server sidecar's inbound port and SPIFFE ID. */
  readonly peerPort?: number;
  readonly peerId?: string;
  /** Client only: `outbound.http2` (false: HTTP/1.1 keep-alive connections between the sidecars). */
  readonly http2?: boolean;
}

interface Ready {
  readonly pid: number;
  readonly inboundPort: number;
  readonly outboundPort: number;
}

const ENTRY = fileURLToPath(import.meta.url);
// V8 flags for both sidecars (NODE_OPTIONS refuses most of them), e.g. `--max-semi-space-size=2`; by default the
// image's and the heap bound of the injector's memory limit (a sidecar in a pod runs with both), none with
// BENCH_IMAGE_FLAGS=0.
export const SIDECAR_NODE_FLAGS: readonly string[] =
  process.env.MESHAUTH_BENCH_NODE_ARGS === undefined
    ? [...imageNodeFlags(), ...podHeapFlags()]
    : process.env.MESHAUTH_BENCH_NODE_ARGS.split(' ').filter((arg) => arg !== '');

/**
 * `http2` false runs the pair with HTTP/1.1 between the sidecars (`outbound.http2: false`; the bench's `meshauth-h1`
 * rows, and every meshauth row with MESHAUTH_BENCH_HTTP2=0).
 * The pair's processes run on the bench's own Node unless `node` names another binary: `MESHAUTH_BENCH_NODE` adds a
 * second meshauth row on that runtime (the image runs a newer Node line than the development machines), measured in
 * the same run as the others so the two rows compare.
 */
export async function startMeshauthPair(
  options: PeerOptions,
  node: string = process.execPath,
  http2: boolean = process.env.MESHAUTH_BENCH_HTTP2 !== '0',
): Promise<ProxyPair> {
  const { pki, appPort } = options;
  const spawnSidecar = async (spec: SidecarSpec) => {
    const child = spawnChild(`meshauth-${spec.role}`, node, [
      ...SIDECAR_NODE_FLAGS,
      ENTRY,
      '--sidecar',
      JSON.stringify(spec),
    ]);
    try {
      return { child, ready: await firstJsonLine<Ready>(child, 15_000) };
    } catch (error) {
      await child.stop();
      throw error;
    }
  };
  const server = await spawnSidecar({
    role: 'server',
    files: pki.serverFiles,
    id: pki.server.id.toString(),
    caFile: pki.caFile,
    appPort,
  });
  let client: Awaited<ReturnType<typeof spawnSidecar>>;
  try {
    client = await spawnSidecar({
      role: 'client',
      files: pki.clientFiles,
      id: pki.client.id.toString(),
      caFile: pki.caFile,
      appPort,
      peerPort: server.ready.inboundPort,
      peerId: pki.server.id.toString(),
      http2,
    });
  } catch (error) {
    await server.child.stop();
    throw error;
  }
  return {
    name: 'meshauth',
    url: `http://127.0.0.1:${client.ready.outboundPort}/`,
    outboundPid: client.child.pid,
    inboundPid: server.child.pid,
    version: `node ${node === process.execPath ? process.version : nodeVersion(node)}`,
    stop: async () => {
      await Promise.all([client.child.stop(), server.child.stop()]);
    },
  };
}

/** `v24.11.1` for the binary at `node`. */
export function nodeVersion(node: string): string {
  return execFileSync(node, ['--version'], { encoding: 'utf8', timeout: 10_000 }).trim();
}

async function runSidecar(spec: SidecarSpec): Promise<void> {
  const td = TrustDomain.parse(BENCH_TRUST_DOMAIN);
  const svid = X509Svid.fromPem({
    id: SpiffeId.parse(spec.id),
    certChainPem: readFileSync(spec.files.chainFile, 'utf8'),
    privateKeyPem: readFileSync(spec.files.keyFile, 'utf8'),
    keyType: 'p256',
  });
  const bundle = TrustBundle.fromPem(td, readFileSync(spec.caFile, 'utf8'));
  const config = sidecarConfigFromObject(
    {
      trustDomain: td.name,
      // Never contacted: the holder is pre-filled, so no agent starts.
      ca: { url: 'https://127.0.0.1:9', bundle: spec.caFile, token: spec.caFile },
      inbound: { listen: '127.0.0.1:0', app: `127.0.0.1:${spec.appPort}` },
      outbound: {
        listen: '127.0.0.1:0',
        // startMeshauthPair's `http2` (MESHAUTH_BENCH_HTTP2=0 by default): HTTP/1.1 keep-alive between the sidecars.
        http2: spec.http2 ?? true,
        ...(spec.peerPort === undefined || spec.peerId === undefined
          ? {}
          : { routes: { [MESH_HOST]: { address: `127.0.0.1:${spec.peerPort}`, ids: [spec.peerId] } } }),
      },
      admin: { listen: '127.0.0.1:0' },
      drainTimeout: '1s',
    },
    `bench ${spec.role}`,
  );
  const sidecar = await startSidecar(config, {
    logger: silentLogger(),
    metrics: new Metrics({ defaultMetrics: true }), // as `meshauth sidecar` runs it
    holder: new CredentialHolder({ svid, bundle }),
  });
  const ready: Ready = { pid: process.pid, inboundPort: sidecar.inboundPort, outboundPort: sidecar.outboundPort };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
  // `--cpu-prof` is refused in NODE_OPTIONS: bench/profile asks for a profile through this variable instead.
  const profileDir = process.env.MESHAUTH_BENCH_CPU_PROF;
  const profiler = profileDir === undefined ? undefined : new Session();
  if (profiler !== undefined) {
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.start');
  }
  // Allocations, sampled every 4 KiB on average, those collected since included: what the request path leaves to
  // the scavenger, which a profile of live objects at exit would not show.
  const heapDir = process.env.MESHAUTH_BENCH_HEAP_PROF;
  const heapProfiler = heapDir === undefined ? undefined : new Session();
  if (heapProfiler !== undefined) {
    heapProfiler.connect();
    await heapProfiler.post('HeapProfiler.enable');
    await heapProfiler.post('HeapProfiler.startSampling', {
      samplingInterval: 4096,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  }
  const loopLog = process.env.MESHAUTH_BENCH_LOOP_LOG;
  const loop = loopLog === undefined ? undefined : watchLoop();
  process.once('SIGTERM', () => {
    void (async () => {
      if (loop !== undefined && loopLog !== undefined) {
        try {
          writeFileSync(join(loopLog, `${spec.role}-${process.pid}.loop.json`), JSON.stringify(loop.report()));
        } catch (error) {
          process.stderr.write(`loop log not written: ${String(error)}\n`);
        }
      }
      if (profiler !== undefined && profileDir !== undefined) {
        const { profile } = await profiler.post('Profiler.stop');
        writeFileSync(join(profileDir, `${spec.role}-${process.pid}.cpuprofile`), JSON.stringify(profile));
      }
      if (heapProfiler !== undefined && heapDir !== undefined) {
        const { profile } = await heapProfiler.post('HeapProfiler.stopSampling');
        writeFileSync(join(heapDir, `${spec.role}-${process.pid}.heapprofile`), JSON.stringify(profile));
      }
      await sidecar.close(500);
    })().finally(() => process.exit(0));
  });
}

const GC_KINDS = new Map<number, string>([
  [perfConstants.NODE_PERFORMANCE_GC_MINOR, 'scavenge'],
  [perfConstants.NODE_PERFORMANCE_GC_MAJOR, 'mark-compact'],
  [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL, 'incremental marking'],
  [perfConstants.NODE_PERFORMANCE_GC_WEAKCB, 'weak callbacks'],
]);

function gcPause(entry: PerformanceEntry): { kind: number; ms: number } {
  const detail = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail;
  return { kind: detail?.kind ?? 0, ms: Math.round(entry.duration * 1000) / 1000 };
}

const MiB = (bytes: number) => Math.round(bytes / 104_857.6) / 10;

// Where a sidecar's peak RSS is: sampled every 100 ms, the sample with the highest RSS kept, split into V8's heap
// spaces (committed), memory outside the heap that V8 knows of (`external`, of which ArrayBuffers) and the rest
// (native: TLS and nghttp2 state, malloc, the binary's pages), and into anonymous and file-backed pages.
function watchPeakMemory(): { report(): unknown } {
  let peak = { rss: 0, sample: {} as Record<string, number> };
  const sample = () => {
    const usage = process.memoryUsage();
    if (usage.rss <= peak.rss) return;
    const spaces = getHeapSpaceStatistics();
    const resident = memoryKiB(process.pid);
    peak = {
      rss: usage.rss,
      sample: {
        rss: MiB(usage.rss),
        heapCommitted: MiB(usage.heapTotal),
        heapUsed: MiB(usage.heapUsed),
        external: MiB(usage.external),
        arrayBuffers: MiB(usage.arrayBuffers),
        outsideHeap: MiB(usage.rss - usage.heapTotal - usage.external),
        rssAnon: MiB(resident.anon * 1024),
        rssFile: MiB(resident.file * 1024),
        ...Object.fromEntries(spaces.map((space) => [space.space_name, MiB(space.space_size)])),
      },
    };
  };
  const timer = setInterval(sample, 100);
  timer.unref();
  return { report: () => peak.sample };
}

// Why a sidecar's tail latency is what it is: every GC pause (kind, ms) and the event loop's delay histogram,
// written on exit when MESHAUTH_BENCH_LOOP_LOG names a directory, with the peak RSS split by watchPeakMemory.
function watchLoop(): { report(): unknown } {
  const memory = watchPeakMemory();
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const pauses: { kind: number; ms: number }[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) pauses.push(gcPause(entry));
  });
  observer.observe({ entryTypes: ['gc'] });
  return {
    report: () => {
      for (const entry of observer.takeRecords()) pauses.push(gcPause(entry));
      const ms = (ns: number) => Math.round(ns / 1000) / 1000;
      const byKind = new Map<string, number[]>();
      for (const pause of pauses) {
        const kind = GC_KINDS.get(pause.kind) ?? String(pause.kind);
        const list = byKind.get(kind) ?? [];
        list.push(pause.ms);
        byKind.set(kind, list);
      }
      return {
        peakMemoryMiB: memory.report(),
        loopDelayMs: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max) },
        gc: [...byKind].map(([kind, list]) => ({
          kind,
          count: list.length,
          totalMs: Math.round(list.reduce((a, b) => a + b, 0)),
          maxMs: Math.max(...list),
          over2Ms: list.filter((x) => x > 2).length,
        })),
      };
    },
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv[2] === '--sidecar') await runSidecar(JSON.parse(process.argv[3] ?? '{}') as SidecarSpec);
}
