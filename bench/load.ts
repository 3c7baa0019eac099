// Load generation and the processes' own accounting. The load runs in a child process (`node dist/bench/load.js
// --worker JSON`) so the runner's work never shares its event loop; the runner reads /proc/<pid>/stat (utime +
// stime of all threads) of each measured process at the start and end of the measured window.
// Closed loop (N connections, as fast as they answer): wrk (C, one thread, so the load generator takes far less
// CPU from the proxies than a Node one), its latency percentiles read at µs resolution from a Lua `done` hook;
// autocannon (per-response latency from its 'response' events) only when wrk is not on PATH. Fixed rate: an
// open-loop schedule over an undici Pool (wrk has no open-loop mode; autocannon's rate limit sends each second's
// quota in one burst). A fixed-rate phase may name a baseline (the app itself): the same generator process warms up
// on both and measures a baseline window right before the target's, so the p99 a proxy adds compares two windows of
// one warmed generator seconds apart, not the target with another process's window from the start of the run.
import { execFile, execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Pool } from 'undici';
import { firstJsonLine, spawnChild } from './children.js';

export interface LoadSpec {
  readonly url: string;
  /** Host header sent (the meshauth outbound routes by it; the others ignore it). */
  readonly host: string;
  readonly mode: 'closed' | 'rate';
  readonly connections: number;
  readonly warmupSec: number;
  readonly durationSec: number;
  /** Requests per second for mode 'rate'. */
  readonly rate?: number;
  /** Mode 'rate' only: a URL measured the same way right before `url` (its window is not in the CPU readings). */
  readonly baselineUrl?: string;
}

export interface LoadResult {
  /** 2xx responses in the measured window. */
  readonly requests: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly non2xx: number;
  /** CPU µs used in the measured window by each watched PID (all threads). */
  readonly cpuUs: ReadonlyMap<number, number>;
  /** The `baselineUrl` window's latency, when the spec named one. */
  readonly baseline?: { readonly p50Ms: number; readonly p99Ms: number };
}

interface WorkerResult {
  readonly requests: number;
  readonly seconds: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly non2xx: number;
  readonly baseline?: { readonly p50Ms: number; readonly p99Ms: number };
}

const WORKER = fileURLToPath(import.meta.url);

/** Runs one load phase in a child process; `watch` are the PIDs whose CPU time is read around the window. */
export async function runLoad(spec: LoadSpec, watch: readonly number[]): Promise<LoadResult> {
  const child = spawnChild('load', process.execPath, [WORKER, '--worker', JSON.stringify(spec)]);
  try {
    // Before the target's window: the warm-up, and with a baseline a second warm-up and the baseline's window.
    const beforeSec = spec.baselineUrl === undefined ? spec.warmupSec : 2 * spec.warmupSec + spec.durationSec;
    await firstJsonLine<{ phase: string }>(child, (beforeSec + 30) * 1000); // the target's window opens
    const before = new Map(watch.map((pid) => [pid, cpuTimeUs(pid)]));
    const result = await firstJsonLine<WorkerResult>(child, (spec.durationSec + 30) * 1000);
    const cpuUs = new Map(watch.map((pid) => [pid, cpuTimeUs(pid) - (before.get(pid) ?? 0)]));
    return {
      requests: result.requests,
      rps: result.requests / result.seconds,
      p50Ms: result.p50Ms,
      p99Ms: result.p99Ms,
      errors: result.errors,
      non2xx: result.non2xx,
      cpuUs,
      ...(result.baseline === undefined ? {} : { baseline: result.baseline }),
    };
  } finally {
    await child.stop();
  }
}

// ---- /proc accounting -------------------------------------------------------------------------------------------

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** utime + stime of the whole process (every thread, live or exited), in µs; NaN when the process is gone. */
export function cpuTimeUs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces): state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1e6) / clockTicks();
  } catch {
    return Number.NaN;
  }
}

/** Direct children of a process (nginx's worker under its master). */
export function childPids(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number),
    );
  } catch {
    // Kernels without /proc/<pid>/task/<tid>/children: scan every process's parent PID.
    return readdirSync('/proc')
      .filter((name) => /^\d+$/.test(name))
      .filter((name) => {
        try {
          const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
          return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
        } catch {
          return false;
        }
      })
      .map(Number);
  }
}

export interface Machine {
  readonly cores: number;
  readonly cpuModel: string;
  readonly node: string;
  readonly openssl: string;
  readonly kernel: string;
  readonly loadAverage1m: number;
}

export function machineInfo(): Machine {
  const list = cpus();
  return {
    cores: list.length,
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    node: process.version,
    openssl: process.versions.openssl,
    kernel: release(),
    loadAverage1m: Math.round((loadavg()[0] ?? 0) * 100) / 100,
  };
}

export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

// ---- the worker (child process) ---------------------------------------------------------------------------------

interface Recorder {
  latenciesMs: number[];
  errors: number;
  non2xx: number;
}

interface AutocannonInstance {
  on(event: 'response', listener: (client: unknown, status: number, bytes: number, ms: number) => void): void;
  on(event: 'reqError', listener: (error: Error) => void): void;
  on(event: 'done', listener: (result: unknown) => void): void;
}
type Autocannon = (options: Record<string, unknown>) => AutocannonInstance;

/** The closed-loop load generator `npm run bench` uses on this machine: wrk when on PATH, else autocannon. */
export function closedLoopTool(): 'wrk' | 'autocannon' {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return 'wrk';
  } catch (error) {
    // `wrk --version` prints its banner and exits 1: only a missing binary (ENOENT) means no wrk.
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'autocannon' : 'wrk';
  }
}

// wrk reports in a Lua `done` hook: one JSON line with the counts and the latency percentiles (µs).
const WRK_REPORT = `done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"durationUs":%d,"p50Us":%d,"p99Us":%d,"status":%d,"socket":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), e.status,
    e.connect + e.read + e.write + e.timeout))
end
`;

interface WrkReport {
  readonly requests: number;
  readonly durationUs: number;
  readonly p50Us: number;
  readonly p99Us: number;
  /** Responses with a status >= 400 (wrk's own definition of a status error). */
  readonly status: number;
  readonly socket: number;
}

async function wrkClosedLoop(spec: LoadSpec, seconds: number, recorder: WindowResult): Promise<number> {
  // Written for this run and removed after it: the worker is ended by a signal, so an exit hook would never run.
  const wrkScript = join(tmpdir(), `meshauth-bench-wrk-${process.pid}-${Date.now()}.lua`);
  writeFileSync(wrkScript, WRK_REPORT);
  const args = ['-t1', `-c${spec.connections}`, `-d${Math.max(1, Math.round(seconds))}s`, '-s', wrkScript];
  let stdout: string;
  try {
    stdout = await new Promise<string>((resolve, reject) => {
      execFile('wrk', [...args, '-H', `Host: ${spec.host}`, spec.url], (error, out) =>
        error === null ? resolve(out) : reject(error),
      );
    });
  } finally {
    rmSync(wrkScript, { force: true });
  }
  const line = stdout.split('\n').find((l) => l.startsWith('{"requests"'));
  if (line === undefined) throw new Error(`wrk printed no report: ${stdout.slice(0, 400)}`);
  const report = JSON.parse(line) as WrkReport;
  recorder.ok = report.requests - report.status;
  recorder.p50Ms = report.p50Us / 1000;
  recorder.p99Ms = report.p99Us / 1000;
  recorder.errors += report.socket;
  recorder.non2xx += report.status;
  return report.durationUs / 1e6;
}

/** What a wrk window reports (it keeps no per-response list: percentiles come from its own histogram). */
interface WindowResult {
  ok: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
}

async function closedLoop(spec: LoadSpec, seconds: number, recorder: Recorder): Promise<number> {
  const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
  const start = process.hrtime.bigint();
  const instance = autocannon({
    url: spec.url,
    connections: spec.connections,
    pipelining: 1,
    duration: seconds,
    headers: { host: spec.host },
  });
  instance.on('response', (_client, status, _bytes, ms) => {
    if (status >= 200 && status < 300) recorder.latenciesMs.push(ms);
    else recorder.non2xx++;
  });
  instance.on('reqError', () => {
    recorder.errors++;
  });
  await new Promise((resolve) => instance.on('done', resolve));
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** Open loop: request i is due at i/rate s; a 1 ms timer sends whatever is due (queued in the pool if busy). */
async function fixedRate(spec: LoadSpec, seconds: number, recorder: Recorder): Promise<number> {
  const rate = spec.rate ?? 1000;
  const pool = new Pool(new URL(spec.url).origin, { connections: spec.connections, pipelining: 1 });
  const total = Math.round(rate * seconds);
  let sent = 0;
  const inFlight = new Set<Promise<void>>();
  const one = async (): Promise<void> => {
    const t0 = process.hrtime.bigint();
    try {
      const response = await pool.request({
        path: new URL(spec.url).pathname,
        method: 'GET',
        headers: { host: spec.host },
      });
      await response.body.dump();
      if (response.statusCode >= 200 && response.statusCode < 300) {
        recorder.latenciesMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
      } else recorder.non2xx++;
    } catch {
      recorder.errors++;
    }
  };
  const start = process.hrtime.bigint();
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const due = Math.min(total, Math.floor((Number(process.hrtime.bigint() - start) / 1e9) * rate));
      for (; sent < due; sent++) {
        const p = one().finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      if (sent >= total) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  await Promise.all(inFlight);
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  await pool.close();
  return elapsed;
}

async function worker(spec: LoadSpec): Promise<void> {
  if (spec.mode === 'closed' && closedLoopTool() === 'wrk') {
    const scratch = (): WindowResult => ({ ok: 0, p50Ms: 0, p99Ms: 0, errors: 0, non2xx: 0 });
    if (spec.warmupSec > 0) await wrkClosedLoop(spec, spec.warmupSec, scratch());
    process.stdout.write(`${JSON.stringify({ phase: 'measure' })}\n`);
    const window = scratch();
    const seconds = await wrkClosedLoop(spec, spec.durationSec, window);
    const result: WorkerResult = {
      requests: window.ok,
      seconds,
      p50Ms: window.p50Ms,
      p99Ms: window.p99Ms,
      errors: window.errors,
      non2xx: window.non2xx,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const run = spec.mode === 'closed' ? closedLoop : fixedRate;
  const baseline =
    spec.mode === 'rate' && spec.baselineUrl !== undefined ? { ...spec, url: spec.baselineUrl } : undefined;
  const scratch = (): Recorder => ({ latenciesMs: [], errors: 0, non2xx: 0 });
  if (spec.warmupSec > 0) {
    if (baseline !== undefined) await run(baseline, spec.warmupSec, scratch());
    await run(spec, spec.warmupSec, scratch());
  }
  let baselineLatency: WorkerResult['baseline'];
  if (baseline !== undefined) {
    const recorder = scratch();
    await run(baseline, spec.durationSec, recorder);
    const sorted = Float64Array.from(recorder.latenciesMs).sort();
    baselineLatency = { p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99) };
  }
  process.stdout.write(`${JSON.stringify({ phase: 'measure' })}\n`);
  const recorder = scratch();
  const seconds = await run(spec, spec.durationSec, recorder);
  const sorted = Float64Array.from(recorder.latenciesMs).sort();
  const result: WorkerResult = {
    requests: sorted.length,
    seconds,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    errors: recorder.errors,
    non2xx: recorder.non2xx,
    ...(baselineLatency === undefined ? {} : { baseline: baselineLatency }),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv[2] === '--worker') await worker(JSON.parse(process.argv[3] ?? '{}') as LoadSpec);
}
