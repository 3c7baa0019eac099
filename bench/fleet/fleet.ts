// `npm run bench -- --fleet N` (default 10,000; `--quick` 1,000): N simulated workloads — the real Agent, each its
// own key, CSR and service-account token — in a few processes, against 2 stateless CA replicas (`ca serve
// --k8s-issuer … --k8s-jwks FILE` over one read-only directory) behind one TCP address (shared with SO_REUSEPORT, so
// the kernel spreads connections as a Service's rules do; HAProxy or a Node balancer where Node cannot):
//   cold start   all N bootstrap at once: time until 50/99/100 % hold an SVID, CA CPU, p99 issuance latency,
//                429s served, retries;
//   steady       60 s SVIDs for a window: CA CPU per renewal, projected to 10,000 workloads at 1 h SVIDs;
//   replica kill N fresh agents bootstrap and one replica is SIGKILLed mid-storm: nobody may end without an SVID.
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportJWK } from 'jose';
import { reusePortSupported } from '../../src/platform/index.js';
import { imageNodeFlags } from '../image-node-flags.js';
import { findBinary } from '../peers.js';
import type { HostConfig, HostReport } from './agent-host.js';
import { type CaProcess, caNodeArgs, processCpuMs, serveSupports, stageCa, startCaProcess } from './ca-process.js';
import { startHaproxyBalancer } from './haproxy-balancer.js';
import { startTcpBalancer } from './tcp-balancer.js';

const HOST_SCRIPT = fileURLToPath(new URL('./agent-host.js', import.meta.url));
const TRUST_DOMAIN = 'fleet.test';
const K8S_ISSUER = 'https://kubernetes.default.svc.cluster.local';
/** 10,000 workloads with 1 h SVIDs renewing at half-life: renewals per second the projection is made for. */
const RENEWALS_PER_SECOND_10K_1H = 10_000 / 1800;

export interface FleetOptions {
  readonly agents: number;
  readonly hosts: number;
  readonly steadySeconds: number;
  readonly workers: number;
  readonly maxQueue: number | undefined;
  readonly killPhase: boolean;
  readonly deadlineSeconds: number;
  /** SVID lifetime during the run (`--fleet-svid-ttl`, default 60 s): N agents renew about N / (TTL / 2) per second. */
  readonly svidTtlSeconds: number;
}

export interface FleetResult {
  readonly agents: number;
  readonly caReplicas: number;
  readonly agentProcesses: number;
  readonly caWorkersPerReplica: number | null;
  /**
   * What stands in for the Service in front of the replicas: `reuseport` (both replicas bind one address with
   * SO_REUSEPORT and the kernel spreads connections, no process in between), `haproxy` (TCP mode) or `node`.
   */
  readonly balancer: string;
  /** Node flags every CA replica and agent process ran with: the image's ENTRYPOINT flags (bench/image-node-flags.ts). */
  readonly nodeFlags: readonly string[];
  /**
   * The CA replicas' heap bound besides: what Node gives a replica under deploy/base's memory limit, or the one
   * FLEET_CA_NODE_ARGS put in its place.
   */
  readonly caHeapFlags?: readonly string[];
  readonly coldStart: {
    readonly halfReadySeconds: number | null;
    readonly p99ReadySeconds: number | null;
    readonly allReadySeconds: number | null;
    readonly failedAgents: number;
    readonly p50IssueMs: number | null;
    readonly p99IssueMs: number | null;
    readonly caCpuSeconds: number;
    readonly caCpuMsPerSvid: number;
    /** CPU of the agent processes (simulated workloads, same machine) during the cold start. */
    readonly agentCpuSeconds: number;
    readonly agentCpuMsPerSvid: number;
    /** CPU of the balancer in front of the replicas (HAProxy, the bench process when it balances itself, 0 for the kernel). */
    readonly balancerCpuSeconds: number;
    /** The machine's load average (1 min) at the end of the cold start. */
    readonly loadAverage1m: number;
    readonly rejected429: number;
    readonly retries: number;
    readonly retrySpreadMaxBucketPercent: number | null;
  };
  readonly steady: {
    readonly windowSeconds: number;
    readonly svidTtlSeconds: number;
    readonly renewals: number;
    /** Marginal CA CPU per renewal: the window's CA CPU minus what the idle replicas burn anyway (timers, stats). */
    readonly caCpuMsPerRenewal: number | null;
    readonly caCpuPercentPer10k: number | null;
    /** CPU both replicas use with no request at all, % of one core (fixed per replica, not per workload). */
    readonly caIdleCpuPercent: number;
    readonly failures: number;
  };
  readonly replicaKill: {
    readonly killedAtReadyPercent: number;
    readonly allReadySeconds: number | null;
    readonly failedAgents: number;
    readonly survivorIssued: number;
  } | null;
  readonly memoryPerAgentKiB: { readonly rss: number; readonly heap: number };
}

interface Host {
  readonly child: ChildProcess;
  readonly count: number;
  report(): Promise<HostReport>;
  stop(): Promise<void>;
}

async function startHosts(
  config: Omit<HostConfig, 'hostIndex' | 'count'>,
  agents: number,
  hosts: number,
  base: number,
) {
  const started: Host[] = [];
  for (let h = 0; h < hosts; h += 1) {
    const count = Math.floor(agents / hosts) + (h < agents % hosts ? 1 : 0);
    const hostConfig: HostConfig = { ...config, hostIndex: base + h, count };
    // The image's flags (an agent runs inside a sidecar started from it); FLEET_AGENT_NODE_ARGS (e.g. "--cpu-prof
    // --cpu-prof-dir=/tmp/prof") adds to them.
    const extraArgs = (process.env.FLEET_AGENT_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
    const child = fork(HOST_SCRIPT, [JSON.stringify(hostConfig)], {
      execArgv: ['--expose-gc', '--max-old-space-size=2048', ...imageNodeFlags(), ...extraArgs],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`agent host ${h} exited (${code}) before it was ready`)));
      child.on('message', (m: { type: string }) => {
        if (m.type === 'ready') resolve();
      });
    });
    started.push({
      child,
      count,
      report: () =>
        new Promise<HostReport>((resolve) => {
          const onMessage = (m: HostReport) => {
            if (m.type !== 'report') return;
            child.off('message', onMessage);
            resolve(m);
          };
          child.on('message', onMessage);
          child.send({ type: 'report' });
        }),
      stop: () =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) {
            resolve();
            return;
          }
          const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.send({ type: 'stop' });
        }),
    });
  }
  return started;
}

async function reports(hosts: readonly Host[]): Promise<HostReport[]> {
  return Promise.all(hosts.map((h) => h.report()));
}

async function waitForAll(
  hosts: readonly Host[],
  deadlineMs: number,
  onProgress?: (ready: number) => Promise<void> | void,
): Promise<HostReport[]> {
  for (;;) {
    const now = await reports(hosts);
    const notReady = now.reduce((sum, r) => sum + r.notReady, 0);
    const total = hosts.reduce((sum, h) => sum + h.count, 0);
    await onProgress?.(total - notReady);
    if (notReady === 0 || Date.now() > deadlineMs) return now;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function quantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? null;
}

/** Seconds until `share` of the WHOLE fleet (not of those that made it) held an SVID; null if it never did. */
function fleetShareReady(sortedSeconds: readonly number[], agents: number, share: number): number | null {
  const t = sortedSeconds[Math.ceil(share * agents) - 1];
  return t === undefined ? null : round(t);
}

function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Share (%) of refusals-then-retries that fall into the busiest 100 ms bucket: high means synchronized waves. */
function maxBucketPercent(times: readonly number[]): number | null {
  if (times.length < 20) return null;
  const buckets = new Map<number, number>();
  for (const t of times) buckets.set(Math.floor(t / 100), (buckets.get(Math.floor(t / 100)) ?? 0) + 1);
  return round((100 * Math.max(...buckets.values())) / times.length, 1);
}

/**
 * FLEET_BALANCER=reuseport|haproxy|node picks one; by default SO_REUSEPORT where the CLI and Node support it, else
 * HAProxy when installed, else the Node balancer.
 */
function chooseBalancer(cliReusePort: boolean): 'reuseport' | 'haproxy' | 'node' {
  const wanted = process.env.FLEET_BALANCER ?? '';
  const reusePort = cliReusePort && reusePortSupported();
  if (wanted === 'reuseport' && !reusePort)
    throw new Error('FLEET_BALANCER=reuseport needs ca serve --reuse-port and Node ≥ 22.12 on Linux or FreeBSD');
  if (wanted === 'reuseport' || wanted === 'haproxy' || wanted === 'node') return wanted;
  if (wanted !== '') throw new Error(`FLEET_BALANCER=${wanted}: expected reuseport, haproxy or node`);
  if (reusePort) return 'reuseport';
  return findBinary('haproxy') === undefined ? 'node' : 'haproxy';
}

export async function runFleet(options: FleetOptions): Promise<FleetResult> {
  const work = mkdtempSync(join(tmpdir(), 'meshauth-fleet-'));
  const cas: CaProcess[] = [];
  let hosts: Host[] = [];
  let balancer: { readonly port: number; close(): Promise<void> } | undefined;
  try {
    // One CA directory made by `ca init`, served read-only (a mounted Secret: no root key, no join-token store);
    // the cluster's service-account signing key: the CA gets its JWKS as a file, the agent hosts mint tokens.
    const { secretDir, jwksFile, kid, privateKey } = await stageCa(work, TRUST_DOMAIN);
    const bundleFile = join(secretDir, 'bundle.pem');
    const clusterKey = { ...(await exportJWK(privateKey)), kid };

    const svidTtlSeconds = options.svidTtlSeconds;
    const extra: string[] = [];
    const wired = serveSupports('--workers');
    if (wired) extra.push('--workers', String(options.workers));
    if (wired && options.maxQueue !== undefined) extra.push('--max-queue', String(options.maxQueue));
    // The agents refresh the bundle once a day (agent-host.ts): the window measures renewals. They follow the CA's
    // hint after a first fetch, so the CA says the same.
    if (serveSupports('--bundle-refresh-hint')) extra.push('--bundle-refresh-hint', '24h');
    const balancerName = chooseBalancer(serveSupports('--reuse-port'));
    const caArgs = (listen: string) => [
      '--dir',
      secretDir,
      '--listen',
      listen,
      '--admin-listen',
      '127.0.0.1:0',
      '--svid-ttl',
      `${svidTtlSeconds}s`,
      '--k8s-issuer',
      K8S_ISSUER,
      '--k8s-jwks',
      jwksFile,
      ...extra,
      ...(balancerName === 'reuseport' ? ['--reuse-port'] : []),
    ];
    const first = await startCaProcess(caArgs('127.0.0.1:0'));
    cas.push(first);
    // With SO_REUSEPORT the second replica binds the port the first one got.
    cas.push(await startCaProcess(caArgs(balancerName === 'reuseport' ? `127.0.0.1:${first.port}` : '127.0.0.1:0')));
    const backends = cas.map((ca) => ({ host: '127.0.0.1', port: ca.port }));
    // Every agent of a storm may hold a connection at once (waiting at the CA's door), plus retries.
    const haproxy =
      balancerName === 'haproxy' ? await startHaproxyBalancer(backends, work, options.agents * 2 + 1000) : undefined;
    if (balancerName === 'haproxy' && haproxy === undefined)
      throw new Error('FLEET_BALANCER=haproxy: HAProxy is not installed');
    balancer =
      balancerName === 'reuseport'
        ? { port: first.port, close: async () => {} }
        : (haproxy ?? (await startTcpBalancer(backends)));
    // HAProxy is a process of its own; the Node balancer runs in this process; the kernel's work is the replicas'.
    const balancerCpuMs = () => {
      if (haproxy !== undefined) return processCpuMs(haproxy.pid);
      if (balancerName === 'reuseport') return 0;
      const own = process.cpuUsage();
      return (own.user + own.system) / 1000;
    };
    const hostConfig = {
      caUrl: `https://127.0.0.1:${balancer.port}`,
      bundleFile,
      workDir: work,
      trustDomain: TRUST_DOMAIN,
      k8sIssuer: K8S_ISSUER,
      clusterKey,
    };
    const caCpu = () => cas.reduce((sum, ca) => sum + ca.cpuMs(), 0);
    const caCounter = async (name: string, labels: string) =>
      (
        await Promise.all(
          cas
            .filter((ca) => ca.child.exitCode === null && ca.child.signalCode === null)
            .map((ca) => ca.counter(name, labels).catch(() => 0)),
        )
      ).reduce((a, b) => a + b, 0);

    // --- idle baseline: what two replicas cost with nothing to do (measured before anyone asks)
    const idleStart = caCpu();
    const idleStartedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 5000));
    const idleCpuMsPerSecond = ((caCpu() - idleStart) * 1000) / (Date.now() - idleStartedAt);

    // --- cold start
    log(`fleet: minting ${options.agents} service-account tokens in ${options.hosts} agent processes…`);
    hosts = await startHosts(hostConfig, options.agents, options.hosts, 0);
    const agentCpu = () => hosts.reduce((sum, h) => sum + processCpuMs(h.child.pid), 0);
    const cpuBefore = caCpu();
    const agentCpuBefore = agentCpu();
    const balancerCpuBefore = balancerCpuMs();
    const startAt = Date.now() + 300;
    for (const h of hosts) h.child.send({ type: 'start', atMs: startAt });
    log(`fleet: cold start of ${options.agents} agents`);
    let cold = await waitForAll(hosts, startAt + options.deadlineSeconds * 1000);
    const coldCpuMs = caCpu() - cpuBefore;
    const coldAgentCpuMs = agentCpu() - agentCpuBefore;
    const coldBalancerCpuMs = balancerCpuMs() - balancerCpuBefore;
    const loadAverage1m = round(loadavg()[0] ?? 0);
    const rejected429 = await caCounter('meshauth_ca_requests_rejected_total', 'reason="overloaded"');
    const readyTimes = cold.flatMap((r) => r.readyAtMs.map((t) => (t - startAt) / 1000)).sort((a, b) => a - b);
    const latencies = cold.flatMap((r) => r.issueLatencyMs).sort((a, b) => a - b);
    const failedCold = cold.reduce((sum, r) => sum + r.notReady, 0);
    const coldIssued = readyTimes.length;
    const retries = cold.reduce((sum, r) => sum + r.failures, 0);
    const retrySpread = maxBucketPercent(cold.flatMap((r) => r.refusedAtMs.map((t) => t - startAt)));
    const memory = cold.map((r) => ({
      rss: (r.rssBytes - r.baselineRssBytes) / Math.max(1, hosts[r.hostIndex]?.count ?? 1),
      heap: (r.heapBytes - r.baselineHeapBytes) / Math.max(1, hosts[r.hostIndex]?.count ?? 1),
    }));
    const coldStart = {
      halfReadySeconds: fleetShareReady(readyTimes, options.agents, 0.5),
      p99ReadySeconds: fleetShareReady(readyTimes, options.agents, 0.99),
      allReadySeconds: failedCold === 0 ? round(readyTimes.at(-1) ?? 0) : null,
      failedAgents: failedCold,
      p50IssueMs: quantile(latencies, 0.5),
      p99IssueMs: quantile(latencies, 0.99),
      caCpuSeconds: round(coldCpuMs / 1000),
      caCpuMsPerSvid: round(coldCpuMs / Math.max(1, coldIssued), 3),
      agentCpuSeconds: round(coldAgentCpuMs / 1000),
      agentCpuMsPerSvid: round(coldAgentCpuMs / Math.max(1, coldIssued), 3),
      balancerCpuSeconds: round(coldBalancerCpuMs / 1000),
      loadAverage1m,
      rejected429,
      retries,
      retrySpreadMaxBucketPercent: retrySpread,
    };
    log(`fleet: cold start ${JSON.stringify(coldStart)}`);

    // --- steady state: let the first renewals start (they come at 45–55 % of 60 s), then measure a window
    const firstRenewals = Math.max(0, startAt + 0.45 * svidTtlSeconds * 1000 - Date.now());
    await new Promise((resolve) => setTimeout(resolve, firstRenewals));
    const renewalsBefore = await caCounter('meshauth_ca_svids_issued_total', 'method="renewal"');
    const steadyCpuBefore = caCpu();
    const steadyStartedAt = Date.now();
    const failuresBefore = (await reports(hosts)).reduce((sum, r) => sum + r.failures, 0);
    log(`fleet: steady state for ${options.steadySeconds} s with ${svidTtlSeconds} s SVIDs`);
    await new Promise((resolve) => setTimeout(resolve, options.steadySeconds * 1000));
    const steadyWindowMs = Date.now() - steadyStartedAt;
    const steadyCpuMs = Math.max(0, caCpu() - steadyCpuBefore - (idleCpuMsPerSecond * steadyWindowMs) / 1000);
    const renewals = (await caCounter('meshauth_ca_svids_issued_total', 'method="renewal"')) - renewalsBefore;
    const failuresAfter = (await reports(hosts)).reduce((sum, r) => sum + r.failures, 0);
    const cpuPerRenewal = renewals > 0 ? steadyCpuMs / renewals : null;
    const steady = {
      windowSeconds: options.steadySeconds,
      svidTtlSeconds,
      renewals,
      caCpuMsPerRenewal: cpuPerRenewal === null ? null : round(cpuPerRenewal, 3),
      caCpuPercentPer10k:
        cpuPerRenewal === null ? null : round((RENEWALS_PER_SECOND_10K_1H * cpuPerRenewal * 100) / 1000, 3),
      failures: failuresAfter - failuresBefore,
      caIdleCpuPercent: round(idleCpuMsPerSecond / 10, 3),
    };
    log(`fleet: steady ${JSON.stringify(steady)}`);
    await Promise.all(hosts.map((h) => h.stop()));
    hosts = [];

    // --- a replica killed mid-storm
    let replicaKill: FleetResult['replicaKill'] = null;
    if (options.killPhase) {
      log(`fleet: second storm of ${options.agents} fresh agents; replica 2 is SIGKILLed at 25 % ready`);
      hosts = await startHosts(hostConfig, options.agents, options.hosts, options.hosts);
      const [survivor, victim] = cas;
      if (survivor === undefined || victim === undefined) throw new Error('two CA replicas expected');
      const survivorBefore = await survivor.counter('meshauth_ca_svids_issued_total', 'method="k8s_sa_token"');
      const killStart = Date.now() + 300;
      for (const h of hosts) h.child.send({ type: 'start', atMs: killStart });
      let killedAt = -1;
      const killed = await waitForAll(hosts, killStart + options.deadlineSeconds * 1000, async (ready) => {
        if (killedAt < 0 && ready >= options.agents * 0.25) {
          killedAt = ready;
          await victim.kill('SIGKILL');
        }
      });
      const killTimes = killed.flatMap((r) => r.readyAtMs.map((t) => (t - killStart) / 1000)).sort((a, b) => a - b);
      const failed = killed.reduce((sum, r) => sum + r.notReady, 0);
      replicaKill = {
        killedAtReadyPercent: round((100 * killedAt) / options.agents, 1),
        allReadySeconds: failed === 0 ? round(killTimes.at(-1) ?? 0) : null,
        failedAgents: failed,
        survivorIssued:
          (await survivor.counter('meshauth_ca_svids_issued_total', 'method="k8s_sa_token"')) - survivorBefore,
      };
      log(`fleet: replica kill ${JSON.stringify(replicaKill)}`);
      cold = killed;
    }
    return {
      agents: options.agents,
      caReplicas: 2,
      agentProcesses: options.hosts,
      caWorkersPerReplica: wired ? options.workers : null,
      balancer: balancerName,
      nodeFlags: imageNodeFlags(),
      caHeapFlags: caNodeArgs()
        .filter((flag) => flag.startsWith('--max-old-space-size='))
        .slice(-1),
      coldStart,
      steady,
      replicaKill,
      memoryPerAgentKiB: {
        rss: round(memory.reduce((s, m) => s + m.rss, 0) / memory.length / 1024, 1),
        heap: round(memory.reduce((s, m) => s + m.heap, 0) / memory.length / 1024, 1),
      },
    };
  } finally {
    await Promise.all(hosts.map((h) => h.stop()));
    await balancer?.close();
    await Promise.all(cas.map((ca) => ca.kill()));
    rmSync(work, { recursive: true, force: true });
  }
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

export function fleetOptionsFromArgv(argv: readonly string[]): FleetOptions {
  const quick = argv.includes('--quick');
  const value = (flag: string) => {
    const index = argv.indexOf(flag);
    const next = index === -1 ? undefined : argv[index + 1];
    return next !== undefined && /^\d+$/.test(next) ? Number(next) : undefined;
  };
  const agents = value('--fleet') ?? (quick ? 1000 : 10_000);
  return {
    agents,
    hosts: value('--fleet-hosts') ?? Math.max(2, Math.min(8, Math.ceil(agents / 2500))),
    steadySeconds: value('--fleet-steady') ?? (quick ? 20 : 60),
    // In-thread signing: with the DER signer the worker hop costs more CPU than the signature it moves (ca-cost.ts).
    workers: value('--fleet-workers') ?? 0,
    maxQueue: value('--fleet-max-queue'),
    killPhase: !argv.includes('--fleet-no-kill'),
    deadlineSeconds: value('--fleet-deadline') ?? 180,
    // 60 s SVIDs up to 1,000 agents; above, N × 0.06 s (10,000 agents: 600 s, ~33 renewals a second), so the
    // steady window is what two shared cores can carry and no renewal lands inside the cold-start storm.
    svidTtlSeconds: value('--fleet-svid-ttl') ?? Math.max(60, Math.ceil(agents * 0.06)),
  };
}

export function fleetTable(r: FleetResult): string {
  const fmt = (v: number | null, unit = '') => (v === null ? 'n/a' : `${v}${unit}`);
  const rows: [string, string][] = [
    [
      'agents (processes) / CA replicas (workers each)',
      `${r.agents} (${r.agentProcesses}) / ${r.caReplicas} (${fmt(r.caWorkersPerReplica)})`,
    ],
    // Older results (read back from latest.json) have no flags recorded.
    ["node flags (the image's)", (r.nodeFlags ?? []).join(' ') || 'none'],
    ["CA replicas' heap bound (deploy/base's memory limit)", (r.caHeapFlags ?? []).join(' ') || 'none'],
    [
      'cold start: 50 % / 99 % / 100 % hold an SVID',
      `${fmt(r.coldStart.halfReadySeconds, ' s')} / ${fmt(r.coldStart.p99ReadySeconds, ' s')} / ${fmt(r.coldStart.allReadySeconds, ' s')}`,
    ],
    ['cold start: agents without an SVID', String(r.coldStart.failedAgents)],
    [
      'cold start: issuance latency p50 / p99',
      `${fmt(r.coldStart.p50IssueMs, ' ms')} / ${fmt(r.coldStart.p99IssueMs, ' ms')}`,
    ],
    ['cold start: CA CPU (both replicas), per SVID', `${r.coldStart.caCpuSeconds} s, ${r.coldStart.caCpuMsPerSvid} ms`],
    [
      'cold start: agent processes CPU, per SVID',
      `${r.coldStart.agentCpuSeconds} s, ${r.coldStart.agentCpuMsPerSvid} ms (load average ${r.coldStart.loadAverage1m})`,
    ],
    [`cold start: balancer CPU (${r.balancer})`, `${r.coldStart.balancerCpuSeconds} s`],
    ['cold start: 429s served / agent retries', `${r.coldStart.rejected429} / ${r.coldStart.retries}`],
    ['cold start: busiest 100 ms of refusals', fmt(r.coldStart.retrySpreadMaxBucketPercent, ' %')],
    [
      `steady: renewals in window (${r.steady.svidTtlSeconds} s SVIDs)`,
      `${r.steady.renewals} in ${r.steady.windowSeconds} s, ${r.steady.failures} failures`,
    ],
    ['steady: CA CPU per renewal (above idle)', fmt(r.steady.caCpuMsPerRenewal, ' ms')],
    ['steady: CA CPU of the two idle replicas', `${r.steady.caIdleCpuPercent} % of one core`],
    ['steady: projected, 10,000 workloads at 1 h SVIDs', fmt(r.steady.caCpuPercentPer10k, ' % of one core')],
    [
      'replica killed mid-storm: all ready / without SVID',
      r.replicaKill === null
        ? 'skipped'
        : `${fmt(r.replicaKill.allReadySeconds, ' s')} / ${r.replicaKill.failedAgents} (killed at ${r.replicaKill.killedAtReadyPercent} % ready; survivor issued ${r.replicaKill.survivorIssued})`,
    ],
    ['memory per simulated agent (RSS / heap)', `${r.memoryPerAgentKiB.rss} KiB / ${r.memoryPerAgentKiB.heap} KiB`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return ['Fleet', ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)].join('\n');
}
