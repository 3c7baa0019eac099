// The benchmark report: the result types, the performance target checks (✓/✗/–) and three renderings of one result —
// a terminal table, JSON (bench/results/latest.json) and markdown (latest.md). Pure: no I/O, no clock.

import type { GatewayBenchResult } from './gateway.js';
import type { Machine } from './load.js';
import type { TcpBenchResult } from './tcp.js';

export interface Method {
  readonly quick: boolean;
  readonly loadTool: string;
  readonly bodyBytes: number;
  readonly throughputConnections: number;
  readonly fixedRate: number;
  readonly fixedRateConnections: number;
  readonly warmupSec: number;
  readonly throughputSec: number;
  readonly fixedRateSec: number;
  readonly singleConnectionSec: number;
  /**
   * Closed-loop windows per row: the first inside the row's own run, the others after every row had its first, in
   * reverse then forward order, each on a freshly started pair. A row's req/s and CPU per request are the medians, so
   * a slow minute of the machine moves one window of each row instead of every window of one row.
   */
  readonly throughputRounds?: number;
  readonly tls: string;
  /** The Node flags both meshauth sidecars ran with (the image's unless MESHAUTH_BENCH_NODE_ARGS says otherwise). */
  readonly sidecarNodeFlags?: readonly string[];
}

export interface PhaseResult {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  /**
   * Fixed rate only: the p99 of a window straight to the app that the same generator ran right before this one. A
   * row's p99 added is measured against it (against the direct row's when absent, as in results before it existed).
   */
  readonly baselineP99Ms?: number;
}

/** The p99 a row adds at the fixed rate: over its own baseline window, else over the direct row's. */
export function fixedRateP99Added(row: ProxyRow | undefined, direct: ProxyRow | undefined): number | undefined {
  const fixed = row?.fixedRate;
  const baseline = fixed?.baselineP99Ms ?? direct?.fixedRate?.p99Ms;
  return fixed === undefined || baseline === undefined ? undefined : fixed.p99Ms - baseline;
}

export interface ProxyRow {
  readonly name: string;
  readonly version?: string;
  /** Why the row has no numbers (peer not installed, failed to start, …). */
  readonly unavailable?: string;
  /** Closed loop at `throughputConnections`. */
  readonly throughput?: PhaseResult;
  /** Open loop at `fixedRate` req/s. */
  readonly fixedRate?: PhaseResult;
  /** Closed loop on one connection. */
  readonly single?: PhaseResult;
  /** CPU time per request in the throughput phase, µs, per process (medians over the rounds). */
  readonly cpuUsPerReq?: { readonly outbound: number; readonly inbound: number; readonly app: number };
  /** Each closed-loop window of the row, in time order (Method.throughputRounds). */
  readonly rounds?: readonly ThroughputRound[];
  /** MiB: VmRSS before any traffic, VmHWM (peak) after all phases. */
  readonly rssMiB?: {
    readonly outboundIdle: number;
    readonly inboundIdle: number;
    readonly outboundPeak: number;
    readonly inboundPeak: number;
  };
}

export interface ThroughputRound {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly cpuUsPerReq: { readonly outbound: number; readonly inbound: number; readonly app: number };
}

/**
 * The row's closed-loop figures as the medians of its rounds, each figure on its own (with an even count, the mean of
 * the middle two); p50 and p99 from the round whose req/s is nearest that median; errors summed over the rounds.
 */
export function withMedians(row: ProxyRow, rounds: readonly ThroughputRound[]): ProxyRow {
  if (rounds.length < 2 || row.throughput === undefined) return row;
  const median = (pick: (round: ThroughputRound) => number) => medianOf(rounds.map(pick));
  const rps = median((r) => r.rps);
  const nearest = rounds.reduce((best, r) => (Math.abs(r.rps - rps) < Math.abs(best.rps - rps) ? r : best));
  return {
    ...row,
    throughput: {
      rps,
      p50Ms: nearest.p50Ms,
      p99Ms: nearest.p99Ms,
      errors: rounds.reduce((n, r) => n + r.errors, 0),
    },
    cpuUsPerReq: {
      outbound: median((r) => r.cpuUsPerReq.outbound),
      inbound: median((r) => r.cpuUsPerReq.inbound),
      app: median((r) => r.cpuUsPerReq.app),
    },
    rounds,
  };
}

function medianOf(values: readonly number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export type Micro<T> = { readonly ok: true; readonly result: T } | { readonly ok: false; readonly reason: string };

export interface MicroResults {
  readonly ca: Micro<{ name: string; svidsPerSec: number; keyType: string }>;
  readonly pdp: Micro<{ name: string; rules: number; medianUs: number; p99Us: number; decisionsPerSec: number }>;
  readonly passport: Micro<{
    name: string;
    mintVerifyP50Us: number;
    mintVerifyP99Us: number;
    sharedP50Us: number;
    headerBytesByDepth: readonly number[];
  }>;
  readonly handshake: Micro<{ name: string; msPerHandshake: number; p99Ms: number; handshakesPerSec: number }>;
}

export interface TargetCheck {
  readonly what: string;
  readonly target: string;
  readonly measured: string;
  /** true ✓, false ✗, undefined – (not measured). */
  readonly met: boolean | undefined;
}

export interface BenchReport {
  readonly startedAt: string;
  readonly seconds: number;
  readonly machine: Machine;
  readonly method: Method;
  readonly peers: Readonly<Record<string, string>>;
  readonly proxies: readonly ProxyRow[];
  readonly micro: MicroResults;
  /** TCP bulk transfer through tunnel pairs (direct, stunnel, meshauth). */
  readonly tcp: Micro<TcpBenchResult>;
  /** A browser request with a valid session cookie: gateway → sidecar (passport verified) → app. */
  readonly gateway: Micro<GatewayBenchResult>;
  /** The same on MESHAUTH_BENCH_NODE's runtime (the image's), when it is set. */
  readonly gatewayOtherRuntime?: Micro<GatewayBenchResult>;
  readonly targets: readonly TargetCheck[];
  readonly notes: readonly string[];
}

const MESHAUTH = 'meshauth';

/** The performance targets, each evaluated honestly: no number, no tick. */
export function checkTargets(proxies: readonly ProxyRow[], micro: MicroResults): TargetCheck[] {
  const row = (name: string) => proxies.find((p) => p.name === name && p.unavailable === undefined);
  const mesh = row(MESHAUTH);
  const direct = row('direct');
  const haproxy = row('haproxy');
  const checks: TargetCheck[] = [];
  const add = (what: string, target: string, value: number | undefined, ok: (v: number) => boolean, unit: string) =>
    checks.push({
      what,
      target,
      measured:
        value === undefined || Number.isNaN(value)
          ? 'not measured'
          : `${Math.abs(value) >= 1000 ? fmtInt(value) : fmt(value)} ${unit}`.trim(),
      met: value === undefined || Number.isNaN(value) ? undefined : ok(value),
    });

  const meshRps = mesh?.throughput?.rps;
  const haRps = haproxy?.throughput?.rps;
  add(
    'pair throughput vs HAProxy pair',
    '≥ 1.00× HAProxy',
    meshRps !== undefined && haRps !== undefined ? meshRps / haRps : undefined,
    (v) => v >= 1,
    '×',
  );
  const cpu = mesh?.cpuUsPerReq;
  add(
    'CPU per request per sidecar (worst of the two)',
    '≤ 30 µs',
    cpu && Math.max(cpu.outbound, cpu.inbound),
    (v) => v <= 30,
    'µs',
  );
  add(
    'latency added at 1 connection, p50',
    '≤ 0.2 ms',
    mesh?.single && direct?.single ? mesh.single.p50Ms - direct.single.p50Ms : undefined,
    (v) => v <= 0.2,
    'ms',
  );
  add('p99 added at the fixed rate', '≤ 0.5 ms', fixedRateP99Added(mesh, direct), (v) => v <= 0.5, 'ms');
  const rss = mesh?.rssMiB;
  add(
    'sidecar RSS idle (worst)',
    '≤ 60 MiB',
    rss && Math.max(rss.outboundIdle, rss.inboundIdle),
    (v) => v <= 60,
    'MiB',
  );
  add(
    'sidecar RSS under load, peak (worst)',
    '≤ 120 MiB',
    rss && Math.max(rss.outboundPeak, rss.inboundPeak),
    (v) => v <= 120,
    'MiB',
  );
  add(
    'CA signing, P-256, one core',
    '≥ 1,000 SVIDs/s',
    micro.ca.ok ? micro.ca.result.svidsPerSec : undefined,
    (v) => v >= 1000,
    '/s',
  );
  add(
    'PDP median decision, 1,000 rules',
    '≤ 10 µs',
    micro.pdp.ok ? micro.pdp.result.medianUs : undefined,
    (v) => v <= 10,
    'µs',
  );
  add(
    'passport mint+verify per hop, p50',
    '< 0.2 ms',
    micro.passport.ok ? micro.passport.result.mintVerifyP50Us / 1000 : undefined,
    (v) => v < 0.2,
    'ms',
  );
  return checks;
}

// ---- rendering --------------------------------------------------------------------------------------------------

export interface Table {
  readonly head: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

function proxyTables(report: BenchReport): { throughput: Table; latency: Table } {
  const { method } = report;
  const direct = report.proxies.find((p) => p.name === 'direct' && p.unavailable === undefined);
  const haproxy = report.proxies.find((p) => p.name === 'haproxy' && p.unavailable === undefined);
  const ratio = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined || b === 0 ? '–' : `${(a / b).toFixed(2)}×`;
  const signedAdded = (difference: number | undefined) => (difference === undefined ? '' : ` (${signed(difference)})`);
  const added = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined ? '' : signedAdded(a - b);
  const throughput: Table = {
    head: [
      'scenario',
      `req/s @${method.throughputConnections} conn`,
      '× direct',
      '× HAProxy',
      'CPU µs/req out / in',
      'CPU × HAProxy',
      'app µs/req',
      'RSS MiB idle out / in',
      'RSS MiB peak out / in',
    ],
    rows: report.proxies.map((p) => {
      if (p.unavailable !== undefined) return [p.name, `not available: ${p.unavailable}`];
      const t = p.throughput;
      const cpu = p.cpuUsPerReq;
      const haCpu = haproxy?.cpuUsPerReq;
      const isDirect = p.name === 'direct';
      return [
        label(p),
        t ? `${fmtInt(t.rps)}${t.errors > 0 ? ` (${t.errors} err)` : ''}` : '–',
        ratio(t?.rps, direct?.throughput?.rps),
        ratio(t?.rps, haproxy?.throughput?.rps),
        cpu && !isDirect ? `${fmt(cpu.outbound)} / ${fmt(cpu.inbound)}` : '–',
        cpu && haCpu && !isDirect ? ratio(cpu.outbound + cpu.inbound, haCpu.outbound + haCpu.inbound) : '–',
        cpu ? fmt(cpu.app) : '–',
        p.rssMiB && !isDirect ? `${fmt(p.rssMiB.outboundIdle)} / ${fmt(p.rssMiB.inboundIdle)}` : '–',
        p.rssMiB && !isDirect ? `${fmt(p.rssMiB.outboundPeak)} / ${fmt(p.rssMiB.inboundPeak)}` : '–',
      ];
    }),
  };
  const latency: Table = {
    head: [
      'scenario',
      '1 conn p50 ms (added)',
      '1 conn p99 ms',
      '1 conn req/s',
      `@${fmtInt(method.fixedRate)} req/s p50 ms`,
      `@${fmtInt(method.fixedRate)} req/s p99 ms (added)`,
      `@${method.throughputConnections} conn p50 / p99 ms`,
    ],
    rows: report.proxies.map((p) => {
      if (p.unavailable !== undefined) return [p.name, `not available: ${p.unavailable}`];
      const isDirect = p.name === 'direct';
      return [
        label(p),
        p.single ? `${fmt(p.single.p50Ms)}${isDirect ? '' : added(p.single.p50Ms, direct?.single?.p50Ms)}` : '–',
        p.single ? fmt(p.single.p99Ms) : '–',
        p.single ? fmtInt(p.single.rps) : '–',
        p.fixedRate ? fmt(p.fixedRate.p50Ms) : '–',
        p.fixedRate ? `${fmt(p.fixedRate.p99Ms)}${isDirect ? '' : signedAdded(fixedRateP99Added(p, direct))}` : '–',
        p.throughput ? `${fmt(p.throughput.p50Ms)} / ${fmt(p.throughput.p99Ms)}` : '–',
      ];
    }),
  };
  return { throughput, latency };
}

function microTable(micro: MicroResults): Table {
  const row = <T>(name: string, m: Micro<T>, cells: (r: T) => string[]): string[] =>
    m.ok ? [name, ...cells(m.result)] : [name, `not available: ${m.reason}`];
  return {
    head: ['microbenchmark', 'result', 'detail'],
    rows: [
      row('CA signing (P-256)', micro.ca, (r) => [`${fmtInt(r.svidsPerSec)} SVIDs/s`, `key ${r.keyType}, one core`]),
      row('PDP decision', micro.pdp, (r) => [
        `${fmt(r.medianUs)} µs median`,
        `p99 ${fmt(r.p99Us)} µs, ${fmtInt(r.decisionsPerSec)}/s, ${r.rules} rules`,
      ]),
      row('passport mint+verify per hop', micro.passport, (r) => [
        `${fmt(r.mintVerifyP50Us)} µs p50`,
        `p99 ${fmt(r.mintVerifyP99Us)} µs; a later request (link seen, shared) ${fmt(r.sharedP50Us)} µs p50; header bytes by depth ${r.headerBytesByDepth.join(', ')}`,
      ]),
      row('mTLS handshake (P-256, new conn)', micro.handshake, (r) => [
        `${fmt(r.msPerHandshake)} ms`,
        `p99 ${fmt(r.p99Ms)} ms, ${fmtInt(r.handshakesPerSec)} handshakes/s (both sides, one process)`,
      ]),
    ],
  };
}

/** TCP bulk transfer: MiB/s each way and CPU per MiB of each side, with the ratio to stunnel's. */
export function tcpTable(tcp: Micro<TcpBenchResult>): Table {
  const head = ['TCP tunnel pair', 'up MiB/s', 'down MiB/s', 'CPU µs/MiB out / in', 'CPU × stunnel'];
  if (!tcp.ok) return { head, rows: [['tcp bulk transfer', `not available: ${tcp.reason}`]] };
  const stunnel = tcp.result.rows.find((r) => r.name === 'stunnel' && r.unavailable === undefined)?.cpuUsPerMiB;
  const total = (c: { outbound: number; inbound: number } | undefined) =>
    c === undefined ? Number.NaN : c.outbound + c.inbound;
  return {
    head,
    rows: tcp.result.rows.map((r) => {
      if (r.unavailable !== undefined) return [r.name, `not available: ${r.unavailable}`];
      const cpu = r.cpuUsPerMiB;
      return [
        r.version === undefined ? r.name : `${r.name} ${r.version}`,
        fmt(r.upMiBps ?? Number.NaN),
        fmt(r.downMiBps ?? Number.NaN),
        cpu === undefined ? '–' : `${fmt(cpu.outbound)} / ${fmt(cpu.inbound)}`,
        cpu === undefined || stunnel === undefined ? '–' : `${fmt(total(cpu) / total(stunnel))}×`,
      ];
    }),
  };
}

/**
 * The edge gateway with a session cookie, beside the sidecar it forwards to (CPU of each process per request); one
 * row per runtime it ran on, `where` naming the runtime of a run that failed.
 */
export function gatewayTable(
  ...runs: readonly { readonly run: Micro<GatewayBenchResult>; readonly where: string }[]
): Table {
  const head = ['edge request (session cookie)', 'req/s', 'p50 / p99 ms', 'CPU µs/req gateway / sidecar', 'errors'];
  return {
    head,
    rows: runs.map(({ run, where }) => {
      if (!run.ok) return [`gateway → sidecar → app${where}`, `not available: ${run.reason}`];
      const r = run.result;
      return [
        r.name,
        fmtInt(r.rps),
        `${fmt(r.p50Ms)} / ${fmt(r.p99Ms)}`,
        `${fmt(r.cpuUsPerReq.gateway)} / ${fmt(r.cpuUsPerReq.sidecar)}`,
        fmtInt(r.errors),
      ];
    }),
  };
}

function gatewayRuns(report: BenchReport): { run: Micro<GatewayBenchResult>; where: string }[] {
  const own = { run: report.gateway, where: '' };
  return report.gatewayOtherRuntime === undefined
    ? [own]
    : [own, { run: report.gatewayOtherRuntime, where: ' (MESHAUTH_BENCH_NODE)' }];
}

function tcpLine(tcp: Micro<TcpBenchResult>): string {
  return tcp.ok
    ? `TCP bulk transfer: ${tcp.result.mib} MiB up then ${tcp.result.mib} MiB down on one connection per pair (${tcp.result.tls}); CPU = both directions ÷ MiB moved`
    : 'TCP bulk transfer';
}

function targetTable(targets: readonly TargetCheck[]): Table {
  return {
    head: ['SPEC §9 target', 'target', 'measured', ''],
    rows: targets.map((t) => [t.what, t.target, t.measured, t.met === undefined ? '–' : t.met ? '✓' : '✗']),
  };
}

export function methodLines(report: Pick<BenchReport, 'machine' | 'method' | 'peers' | 'startedAt'>): string[] {
  const { machine: m, method: x } = report;
  const peers = Object.entries(report.peers)
    .map(([name, version]) => `${name} ${version}`)
    .join(', ');
  return [
    `meshauth bench${x.quick ? ' --quick' : ''}, ${report.startedAt}`,
    `machine: ${m.cores} cores, ${m.cpuModel}, Linux ${m.kernel}, Node ${m.node}, OpenSSL ${m.openssl}, load avg ${m.loadAverage1m} at start`,
    `peers: ${peers || 'none'}`,
    `method: app = node:http, ${x.bodyBytes} B bodies, one process; every pair = plain HTTP → outbound proxy → ${x.tls} → inbound proxy (client cert required) → app, one process/thread each, keep-alive upstream; meshauth's Node flags: ${x.sidecarNodeFlags?.join(' ') || 'none'}`,
    `load (${x.loadTool}, child process): ${x.warmupSec} s warm-up per phase; ${x.throughputSec} s at ${x.throughputConnections} connections (closed loop${(x.throughputRounds ?? 1) > 1 ? `, ${x.throughputRounds} rounds across all rows, medians` : ''});` +
      ` ${x.fixedRateSec} s at ${fmtInt(x.fixedRate)} req/s over ${x.fixedRateConnections} connections (open loop; for each pair the same generator first warms up on the app and the pair and measures ${x.fixedRateSec} s straight to the app, the baseline of its p99 added); ${x.singleConnectionSec} s at 1 connection`,
    'CPU = utime+stime (all threads) from /proc/<pid>/stat over the measured window ÷ requests; HAProxy/nginx: the worker process. RSS: VmRSS idle, VmHWM peak',
    'caveat: load generator, app and both proxies share the cores; req/s swings ±30 % between runs, CPU/request stays within ±10 %: CPU/request is the headline',
  ];
}

function roundText(round: ThroughputRound): string {
  const { outbound, inbound } = round.cpuUsPerReq;
  return Number.isNaN(outbound)
    ? fmtInt(round.rps)
    : `${fmtInt(round.rps)} (${outbound.toFixed(0)}/${inbound.toFixed(0)})`;
}

/** Each row's closed-loop windows, when there were several: how far apart the rounds of one row were. */
function roundsLines(rows: readonly ProxyRow[]): string[] {
  const measured = rows.filter((row) => (row.rounds?.length ?? 0) > 1);
  if (measured.length === 0) return [];
  const each = measured.map((row) => `${row.name} ${(row.rounds ?? []).map(roundText).join(', ')}`);
  return [`rounds, req/s (CPU µs/req out/in), in time order: ${each.join('; ')}`];
}

export function renderText(report: BenchReport): string {
  const { throughput, latency } = proxyTables(report);
  return [
    ...methodLines(report),
    '',
    'Throughput and cost',
    textTable(throughput),
    ...roundsLines(report.proxies),
    '',
    'Latency',
    textTable(latency),
    '',
    textTable(microTable(report.micro)),
    '',
    tcpLine(report.tcp),
    textTable(tcpTable(report.tcp)),
    '',
    textTable(gatewayTable(...gatewayRuns(report))),
    '',
    textTable(targetTable(report.targets)),
    ...(report.notes.length > 0 ? ['', ...report.notes.map((n) => `note: ${n}`)] : []),
    '',
  ].join('\n');
}

export function renderMarkdown(report: BenchReport): string {
  const { throughput, latency } = proxyTables(report);
  return [
    '# meshauth benchmark',
    '',
    ...methodLines(report).map((line) => `- ${line}`),
    '',
    '## Throughput and cost',
    '',
    mdTable(throughput),
    ...roundsLines(report.proxies).flatMap((line) => ['', line]),
    '',
    '## Latency',
    '',
    mdTable(latency),
    '',
    '## Microbenchmarks',
    '',
    mdTable(microTable(report.micro)),
    '',
    '## TCP tunnels',
    '',
    `- ${tcpLine(report.tcp)}`,
    '',
    mdTable(tcpTable(report.tcp)),
    '',
    '## Edge gateway',
    '',
    mdTable(gatewayTable(...gatewayRuns(report))),
    '',
    '## SPEC §9 targets',
    '',
    mdTable(targetTable(report.targets)),
    ...(report.notes.length > 0 ? ['', ...report.notes.map((n) => `- note: ${n}`)] : []),
    '',
  ].join('\n');
}

export function textTable(table: Table): string {
  const widths = table.head.map((h, i) =>
    Math.max(h.length, ...table.rows.filter((r) => r.length > 2).map((r) => (r[i] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    cells.length === 2 && table.head.length > 2
      ? `${(cells[0] ?? '').padEnd(widths[0] ?? 0)}  ${cells[1] ?? ''}`
      : cells
          .map((c, i) => c.padEnd(widths[i] ?? 0))
          .join('  ')
          .trimEnd();
  return [line(table.head), widths.map((w) => '-'.repeat(w)).join('  '), ...table.rows.map(line)].join('\n');
}

function mdTable(table: Table): string {
  const esc = (s: string) => s.replaceAll('|', '\\|');
  const pad = (cells: readonly string[]) => table.head.map((_, i) => esc(cells[i] ?? '')).join(' | ');
  return [
    `| ${pad(table.head)} |`,
    `|${table.head.map(() => '---').join('|')}|`,
    ...table.rows.map((r) => `| ${pad(r)} |`),
  ].join('\n');
}

function label(p: ProxyRow): string {
  return p.version === undefined ? p.name : `${p.name} ${p.version}`;
}

/** Three significant digits, at most 3 decimals (0.087, 1.23, 27.4, 412). */
export function fmt(n: number): string {
  if (!Number.isFinite(n)) return '–';
  const abs = Math.abs(n);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return n.toFixed(digits);
}

export function fmtInt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–';
}

function signed(n: number): string {
  return `${n >= 0 ? '+' : '−'}${fmt(Math.abs(n))}`;
}
