// `npm run bench [-- --quick]`: one run, one table. Starts the app, then each scenario in turn
// (direct, HAProxy pair, nginx pair, meshauth pair) and measures all of them with the same load loop (bench/load.ts),
// then the microbenchmarks (CA, PDP, passport, handshake), checks the performance targets and writes
// bench/results/latest.{json,md}. A peer or benchmark module that is missing or fails becomes a "not available: …"
// row; only a crash of the runner itself exits non-zero.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { APP_BODY_BYTES } from './app.js';
import { type BenchPki, createBenchPki } from './bench-pki.js';
import { firstJsonLine, installCleanup, spawnChild, stopAll } from './children.js';
import { benchGateway } from './gateway.js';
import { benchHandshake } from './handshake.js';
import { closedLoopTool, type LoadSpec, machineInfo, runLoad } from './load.js';
import { MESH_HOST, nodeVersion, SIDECAR_NODE_FLAGS, startMeshauthPair } from './meshauth-pair.js';
import { findBinary, type PeerOptions, type ProxyPair, startHaproxyPair, startNginxPair } from './peers.js';
import { memoryKiB } from './proc-memory.js';
import {
  type BenchReport,
  checkTargets,
  type Method,
  type Micro,
  type MicroResults,
  methodLines,
  type PhaseResult,
  type ProxyRow,
  renderMarkdown,
  renderText,
  type ThroughputRound,
  tcpTable,
  textTable,
  withMedians,
} from './report.js';
import { benchTcp } from './tcp.js';

const quick = process.argv.includes('--quick');
/** Only the TCP tunnel scenario, printed, nothing written (a check while working on the tunnels). `--fleet [N]`: only
 * the fleet scenario (bench/fleet), which writes `fleet` into latest.json next to the other results. */
const tcpOnly = process.argv.includes('--tcp-only');
/** `--rounds N`: closed-loop windows per row (default 3, 1 with --quick). */
const roundsIndex = process.argv.findIndex((arg) => arg === '--rounds' || arg.startsWith('--rounds='));
const roundsArg = process.argv[roundsIndex];
const roundsOption =
  roundsIndex < 0
    ? undefined
    : Number(roundsArg?.startsWith('--rounds=') ? roundsArg.slice('--rounds='.length) : process.argv[roundsIndex + 1]);
if (roundsOption !== undefined && !(Number.isInteger(roundsOption) && roundsOption >= 1 && roundsOption <= 9)) {
  console.error('bench: --rounds takes a whole number from 1 to 9');
  process.exit(2);
}
const LOAD_TOOL = `${closedLoopTool() === 'wrk' ? 'wrk -t1 (closed loop)' : 'autocannon 8 (closed loop; wrk not on PATH)'} + undici Pool (fixed rate)`;
const METHOD: Method = quick
  ? {
      quick,
      loadTool: LOAD_TOOL,
      bodyBytes: APP_BODY_BYTES,
      throughputConnections: 32,
      fixedRate: 1000,
      fixedRateConnections: 16,
      warmupSec: 1,
      throughputSec: 3,
      throughputRounds: roundsOption ?? 1,
      fixedRateSec: 3,
      singleConnectionSec: 2,
      tls: 'TLS 1.3 mTLS, ECDSA P-256 SVIDs',
      sidecarNodeFlags: SIDECAR_NODE_FLAGS,
    }
  : {
      quick,
      loadTool: LOAD_TOOL,
      bodyBytes: APP_BODY_BYTES,
      throughputConnections: 32,
      fixedRate: 1000,
      fixedRateConnections: 16,
      warmupSec: 2,
      throughputSec: 10,
      throughputRounds: roundsOption ?? 3,
      fixedRateSec: 10,
      singleConnectionSec: 5,
      tls: 'TLS 1.3 mTLS, ECDSA P-256 SVIDs',
      sidecarNodeFlags: SIDECAR_NODE_FLAGS,
    };

const RESULTS_DIR = fileURLToPath(new URL('../../bench/results/', import.meta.url));
const MiB = 1024;

interface Scenario {
  readonly name: string;
  /** Undefined for direct (no proxies). */
  readonly start?: (options: PeerOptions) => Promise<ProxyPair>;
}

async function main(): Promise<void> {
  if (process.argv.includes('--fleet')) {
    // The fleet scenario alone: it needs both cores for minutes (agents and CA replicas), so it runs on its own.
    await import('./fleet/run.js');
    return;
  }
  installCleanup();
  const started = Date.now();
  const dir = await mkdtemp(join(tmpdir(), 'meshauth-bench-'));
  const notes: string[] = [];
  try {
    const peers: Record<string, string> = {};
    const pki = await createBenchPki(dir);
    if (tcpOnly) {
      const tcp = await attempt(() => benchTcp({ quick, pki, dir }));
      process.stdout.write(`${textTable(tcpTable(tcp))}\n`);
      if (tcp.ok) console.log(JSON.stringify(tcp.result));
      return;
    }
    const app = spawnChild('app', process.execPath, [fileURLToPath(new URL('./app.js', import.meta.url))]);
    const { port: appPort } = await firstJsonLine<{ port: number }>(app, 10_000);
    const meshPair = await meshauthPairStarter(notes);
    const scenarios: Scenario[] = [
      { name: 'direct' },
      { name: 'haproxy', start: startHaproxyPair },
      { name: 'nginx', start: startNginxPair },
      { name: 'meshauth', start: meshPair },
    ];
    const other = otherRuntime(notes);
    if (other !== undefined) {
      scenarios.push({ name: `meshauth${other.label}`, start: (options) => startMeshauthPair(options, other.node) });
    }
    // HTTP/1.1 between the sidecars (`outbound.http2: false`), on each runtime: the same pair on the lean path.
    scenarios.push({ name: 'meshauth-h1', start: (options) => startMeshauthPair(options, process.execPath, false) });
    if (other !== undefined) {
      scenarios.push({
        name: `meshauth-h1${other.label}`,
        start: (options) => startMeshauthPair(options, other.node, false),
      });
    }
    const header = {
      startedAt: new Date(started).toISOString(),
      machine: machineInfo(),
      method: METHOD,
      peers: installedPeers(),
    };
    for (const line of methodLines(header)) console.log(line);
    console.log('');

    const first: ProxyRow[] = [];
    for (const scenario of scenarios) {
      const row = await measureScenario(scenario, { dir, pki, appPort }, app.pid);
      if (row.version !== undefined && scenario.start !== undefined) peers[row.name] = row.version;
      first.push(row);
      console.log(progressLine(row));
    }
    const proxies = await moreRounds(scenarios, first, { dir, pki, appPort }, app.pid);
    await app.stop();

    console.log('tcp tunnels …');
    const tcp = await attempt(() => benchTcp({ quick, pki, dir }));
    console.log('edge gateway …');
    const gateway = await attempt(() => benchGateway({ quick }));
    const gatewayOtherRuntime =
      other === undefined ? undefined : await attempt(() => benchGateway({ quick, ...other }));
    console.log('microbenchmarks …');
    const micro = await runMicro(pki);
    const report: BenchReport = {
      ...header,
      peers: { ...header.peers, ...peers },
      seconds: Math.round((Date.now() - started) / 100) / 10,
      proxies,
      micro,
      tcp,
      gateway,
      ...(gatewayOtherRuntime === undefined ? {} : { gatewayOtherRuntime }),
      targets: checkTargets(proxies, micro),
      notes,
      // The fleet scenario runs on its own (`--fleet N`) and writes its key into the same file: keep its last result.
      ...(await lastFleetResult()),
    };
    console.log('');
    process.stdout.write(renderText(report));
    await mkdir(RESULTS_DIR, { recursive: true });
    await writeFile(join(RESULTS_DIR, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
    await writeFile(join(RESULTS_DIR, 'latest.md'), renderMarkdown(report));
    console.log(`wrote bench/results/latest.json and latest.md (${report.seconds} s)`);
  } finally {
    await stopAll();
    await rm(dir, { recursive: true, force: true });
  }
}

async function measureScenario(scenario: Scenario, options: PeerOptions, appPid: number): Promise<ProxyRow> {
  let pair: ProxyPair | undefined;
  try {
    const url = `http://127.0.0.1:${options.appPort}/`;
    if (scenario.start !== undefined) pair = await scenario.start(options);
    const target = pair?.url ?? url;
    const pids = pair === undefined ? [] : [pair.outboundPid, pair.inboundPid];
    await new Promise((r) => setTimeout(r, 300)); // let start-up settle before the idle RSS reading
    const idle = pids.map((pid) => memoryKiB(pid).rss / MiB);
    const spec = (extra: Partial<LoadSpec> & Pick<LoadSpec, 'mode' | 'connections' | 'durationSec'>): LoadSpec => ({
      url: target,
      host: MESH_HOST,
      warmupSec: METHOD.warmupSec,
      ...extra,
    });
    const watch = [...pids, appPid];
    const round = await closedLoopRound(target, pids, appPid);
    const fixed = await runLoad(
      spec({
        mode: 'rate',
        connections: METHOD.fixedRateConnections,
        durationSec: METHOD.fixedRateSec,
        rate: METHOD.fixedRate,
        warmupSec: Math.min(1, METHOD.warmupSec),
        ...(pair === undefined ? {} : { baselineUrl: url }),
      }),
      watch,
    );
    const single = await runLoad(
      spec({
        mode: 'closed',
        connections: 1,
        durationSec: METHOD.singleConnectionSec,
        warmupSec: Math.min(1, METHOD.warmupSec),
      }),
      watch,
    );
    const peak = pids.map((pid) => memoryKiB(pid).hwm / MiB);
    const { cpuUsPerReq: _cpu, ...throughput } = round;
    return {
      name: scenario.name,
      ...(pair === undefined ? {} : { version: pair.version }),
      throughput,
      fixedRate: {
        ...phase(fixed),
        ...(fixed.baseline === undefined ? {} : { baselineP99Ms: fixed.baseline.p99Ms }),
      },
      single: phase(single),
      cpuUsPerReq: round.cpuUsPerReq,
      rounds: [round],
      ...(pair === undefined
        ? {}
        : {
            rssMiB: {
              outboundIdle: idle[0] ?? Number.NaN,
              inboundIdle: idle[1] ?? Number.NaN,
              outboundPeak: peak[0] ?? Number.NaN,
              inboundPeak: peak[1] ?? Number.NaN,
            },
          }),
    };
  } catch (error) {
    return { name: scenario.name, unavailable: reasonOf(error) };
  } finally {
    await pair?.stop();
  }
}

/** One closed-loop window at the method's connections against `url`, with each watched process's CPU per request. */
async function closedLoopRound(
  url: string,
  pids: readonly number[],
  appPid: number | undefined,
): Promise<ThroughputRound> {
  const load = await runLoad(
    {
      url,
      host: MESH_HOST,
      warmupSec: METHOD.warmupSec,
      mode: 'closed',
      connections: METHOD.throughputConnections,
      durationSec: METHOD.throughputSec,
    },
    [...pids, ...(appPid === undefined ? [] : [appPid])],
  );
  if (load.requests === 0) throw new Error('no successful responses (check the pair by hand)');
  const perReq = (pid: number | undefined) =>
    pid === undefined ? Number.NaN : (load.cpuUs.get(pid) ?? Number.NaN) / load.requests;
  return { ...phase(load), cpuUsPerReq: { outbound: perReq(pids[0]), inbound: perReq(pids[1]), app: perReq(appPid) } };
}

/**
 * Rounds 2…METHOD.throughputRounds of the closed-loop window, every available row once per round (reverse order, then
 * forward), each on a new pair; each row then reports the medians of its rounds. A row that fails a later round keeps
 * the rounds it has.
 */
async function moreRounds(
  scenarios: readonly Scenario[],
  rows: readonly ProxyRow[],
  options: PeerOptions,
  appPid: number | undefined,
): Promise<ProxyRow[]> {
  const rounds = new Map<string, ThroughputRound[]>(rows.map((row) => [row.name, [...(row.rounds ?? [])]]));
  for (let round = 2; round <= (METHOD.throughputRounds ?? 1); round++) {
    const order = round % 2 === 0 ? [...scenarios].reverse() : scenarios;
    for (const scenario of order) {
      const list = rounds.get(scenario.name);
      if (list === undefined || list.length === 0) continue; // unavailable in its first round
      try {
        list.push(await throughputWindow(scenario, options, appPid));
      } catch (error) {
        console.log(`${scenario.name.padEnd(9)} round ${round} not measured: ${reasonOf(error)}`);
      }
    }
    console.log(`round ${round} of ${METHOD.throughputRounds} done`);
  }
  return rows.map((row) => withMedians(row, rounds.get(row.name) ?? []));
}

async function throughputWindow(
  scenario: Scenario,
  options: PeerOptions,
  appPid: number | undefined,
): Promise<ThroughputRound> {
  const pair = scenario.start === undefined ? undefined : await scenario.start(options);
  try {
    const pids = pair === undefined ? [] : [pair.outboundPid, pair.inboundPid];
    return await closedLoopRound(pair?.url ?? `http://127.0.0.1:${options.appPort}/`, pids, appPid);
  } finally {
    await pair?.stop();
  }
}

function phase(result: { rps: number; p50Ms: number; p99Ms: number; errors: number; non2xx: number }): PhaseResult {
  return { rps: result.rps, p50Ms: result.p50Ms, p99Ms: result.p99Ms, errors: result.errors + result.non2xx };
}

/** A `startMeshauthPair` exported by bench/proxy.ts wins; else bench/meshauth-pair.ts. */
async function meshauthPairStarter(notes: string[]): Promise<(options: PeerOptions) => Promise<ProxyPair>> {
  const module = await optionalModule('proxy');
  const start = module.ok ? module.result.startMeshauthPair : undefined;
  if (typeof start === 'function') {
    notes.push('meshauth pair started by bench/proxy.ts startMeshauthPair');
    return start as (options: PeerOptions) => Promise<ProxyPair>;
  }
  return startMeshauthPair;
}

/**
 * `MESHAUTH_BENCH_NODE=/path/to/node`: the binary the meshauth pair and the edge gateway run on once more, as the
 * rows `meshauth@node<major>` and `gateway … @node<major>` (the targets are checked on the bench's own runtime). A
 * binary that does not run is a note.
 */
function otherRuntime(notes: string[]): { readonly node: string; readonly label: string } | undefined {
  const node = process.env.MESHAUTH_BENCH_NODE;
  if (node === undefined || node === '') return undefined;
  let version: string;
  try {
    version = nodeVersion(node);
  } catch (error) {
    notes.push(`MESHAUTH_BENCH_NODE=${node}: not run (${reasonOf(error)})`);
    return undefined;
  }
  return { node, label: `@node${/^v(\d+)\./.exec(version)?.[1] ?? version}` };
}

function installedPeers(): Record<string, string> {
  const found: Record<string, string> = {};
  for (const name of ['haproxy', 'nginx']) found[name] = findBinary(name) === undefined ? 'not installed' : 'installed';
  return found;
}

// ---- microbenchmarks: the bench modules, loaded dynamically so a missing or failing one is just a row ----------

async function runMicro(pki: BenchPki): Promise<MicroResults> {
  return {
    ca: await micro('ca', 'benchCa', isRecordWith('svidsPerSec')),
    pdp: await micro('pdp', 'benchPdp', isRecordWith('medianUs')),
    passport: await micro('passport', 'benchPassport', isRecordWith('mintVerifyP50Us')),
    handshake: await attempt(() => benchHandshake({ quick, pki })),
  };
}

async function micro<T>(file: string, exportName: string, valid: (value: unknown) => value is T): Promise<Micro<T>> {
  const module = await optionalModule(file);
  if (!module.ok) return module;
  const fn = module.result[exportName];
  if (typeof fn !== 'function') return { ok: false, reason: `bench/${file}.ts has no ${exportName}()` };
  const outcome = await attempt(() => (fn as (options: { quick: boolean }) => Promise<unknown>)({ quick }));
  if (!outcome.ok) return outcome;
  return valid(outcome.result)
    ? { ok: true, result: outcome.result }
    : { ok: false, reason: `unexpected result shape` };
}

async function optionalModule(file: string): Promise<Micro<Record<string, unknown>>> {
  const specifier = new URL(`./${file}.js`, import.meta.url).href;
  try {
    return { ok: true, result: (await import(specifier)) as Record<string, unknown> };
  } catch (error) {
    const code = (error as { code?: string }).code;
    return {
      ok: false,
      reason:
        code === 'ERR_MODULE_NOT_FOUND' ? `bench/${file}.ts not built yet` : `bench/${file}.ts: ${reasonOf(error)}`,
    };
  }
}

async function attempt<T>(fn: () => Promise<T>): Promise<Micro<T>> {
  try {
    return { ok: true, result: await fn() };
  } catch (error) {
    return { ok: false, reason: reasonOf(error) };
  }
}

function isRecordWith<T>(key: string): (value: unknown) => value is T {
  return (value: unknown): value is T =>
    typeof value === 'object' && value !== null && typeof (value as Record<string, unknown>)[key] === 'number';
}

function reasonOf(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/\s+/g, ' ').trim().slice(0, 300);
}

function progressLine(row: ProxyRow): string {
  if (row.unavailable !== undefined) return `${row.name.padEnd(9)} not available: ${row.unavailable}`;
  const t = row.throughput;
  const cpu = row.cpuUsPerReq;
  const cpuText =
    row.name === 'direct' || cpu === undefined
      ? ''
      : `, CPU ${cpu.outbound.toFixed(1)}/${cpu.inbound.toFixed(1)} µs/req`;
  return `${row.name.padEnd(9)} ${Math.round(t?.rps ?? 0)} req/s${cpuText}, 1-conn p50 ${row.single?.p50Ms.toFixed(3)} ms`;
}

await main();

async function lastFleetResult(): Promise<{ fleet?: unknown }> {
  try {
    const previous = JSON.parse(await readFile(join(RESULTS_DIR, 'latest.json'), 'utf8')) as { fleet?: unknown };
    return previous.fleet === undefined ? {} : { fleet: previous.fleet };
  } catch {
    return {};
  }
}
