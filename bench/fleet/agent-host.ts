// One process of simulated workloads for the fleet bench: `count` REAL Agents (src/agent), each with its own
// service-account token file and its own key and CSR (the Agent makes a fresh key per request), all started at
// once on the parent's signal. It reports when each agent first held an SVID, the latency of every successful
// POST /v1/svid (node:http's diagnostics channels: from request creation, TLS handshake included, to response
// headers), when each refused request (429/503) and each retry happened, and its memory.
import { subscribe } from 'node:diagnostics_channel';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { importJWK, type JWK, SignJWT } from 'jose';
import { pino } from 'pino';
import { Agent, CredentialHolder } from '../../src/agent/index.js';
import { TrustDomain } from '../../src/identity/index.js';
import { createLogger, Metrics } from '../../src/telemetry/index.js';

export interface HostConfig {
  readonly hostIndex: number;
  readonly count: number;
  readonly caUrl: string;
  readonly bundleFile: string;
  readonly workDir: string;
  readonly trustDomain: string;
  readonly k8sIssuer: string;
  readonly clusterKey: JWK & { kid: string };
}

export type ToHost = { type: 'start'; atMs: number } | { type: 'stop' } | { type: 'report' };

export interface HostReport {
  readonly type: 'report';
  readonly hostIndex: number;
  readonly readyAtMs: number[];
  readonly notReady: number;
  readonly issueLatencyMs: number[];
  readonly refusedAtMs: number[];
  readonly requests: number;
  readonly failures: number;
  readonly renewals: number;
  readonly rssBytes: number;
  readonly heapBytes: number;
  readonly baselineRssBytes: number;
  readonly baselineHeapBytes: number;
}

interface Timed {
  readonly path: string;
  readonly startedAt: number;
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as HostConfig;
  // FLEET_AGENT_LOG=PREFIX: the agents' warnings and errors (each failed attempt and why) go to PREFIX.<host>.log.
  const logPrefix = process.env.FLEET_AGENT_LOG;
  const logger =
    logPrefix === undefined || logPrefix === ''
      ? createLogger({ level: 'silent' })
      : createLogger({
          level: 'warn',
          destination: pino.destination({ dest: `${logPrefix}.${config.hostIndex}.log`, sync: true }),
        });
  const metrics = new Metrics();
  const key = await importJWK(config.clusterKey, 'RS256');
  const dir = join(config.workDir, `host-${config.hostIndex}`);
  await mkdir(dir, { recursive: true });
  const trustDomain = TrustDomain.parse(config.trustDomain);

  // Tokens first (RS256 signing is the kubelet's cost, not the agents'): one per pod, each its own service account.
  const tokenFiles: string[] = [];
  const nowS = Math.floor(Date.now() / 1000);
  for (let i = 0; i < config.count; i += 1) {
    const ns = `fleet-${config.hostIndex}`;
    const sa = `wl-${i}`;
    const token = await new SignJWT({
      aud: ['meshauth'],
      iss: config.k8sIssuer,
      sub: `system:serviceaccount:${ns}:${sa}`,
      'kubernetes.io': {
        namespace: ns,
        node: { name: 'node-1', uid: '5e0f3f2a-1c7b-4a65-9d3e-2b8c1f0a9e77' },
        pod: { name: `${sa}-7d4b9c-x2x7q`, uid: crypto.randomUUID() },
        serviceaccount: { name: sa, uid: crypto.randomUUID() },
      },
      iat: nowS,
      nbf: nowS,
      exp: nowS + 3600,
      jti: crypto.randomUUID(),
    })
      .setProtectedHeader({ alg: 'RS256', kid: config.clusterKey.kid })
      .sign(key);
    const file = join(dir, `${i}.token`);
    await writeFile(file, token);
    tokenFiles.push(file);
  }

  // Request timings, observed without touching the agent code.
  const started = new WeakMap<object, Timed>();
  const issueLatencyMs: number[] = [];
  const refusedAtMs: number[] = [];
  const svidRequestsAtMs: number[] = [];
  // node:http's channels: the agent's CA client is node:https (request start, then the response head).
  subscribe('http.client.request.start', (message) => {
    const { request } = message as { request: { path: string; method: string } };
    if (request.method !== 'POST' || request.path !== '/v1/svid') return;
    const at = Date.now();
    started.set(request, { path: request.path, startedAt: at });
    svidRequestsAtMs.push(at);
  });
  subscribe('http.client.response.finish', (message) => {
    const { request, response } = message as { request: object; response: { statusCode: number } };
    const timed = started.get(request);
    if (timed === undefined) return;
    const now = Date.now();
    if (response.statusCode === 200) issueLatencyMs.push(now - timed.startedAt);
    else if (response.statusCode === 429 || response.statusCode === 503) refusedAtMs.push(now);
  });

  global.gc?.();
  const baseline = process.memoryUsage();
  const readyAtMs: number[] = [];
  let notReady = config.count;
  const agents = tokenFiles.map(
    (tokenFile) =>
      new Agent({
        trustDomain,
        caUrl: config.caUrl,
        bundleFile: config.bundleFile,
        tokenFile,
        holder: new CredentialHolder(),
        logger,
        metrics,
        // The bundle refresh is not what is measured here.
        bundleRefreshMs: 24 * 3_600_000,
      }),
  );

  process.on('message', (message: ToHost) => {
    if (message.type === 'start') {
      const delay = Math.max(0, message.atMs - Date.now());
      setTimeout(() => {
        for (const agent of agents) {
          agent.start();
          agent.whenReady().then(
            () => {
              readyAtMs.push(Date.now());
              notReady -= 1;
            },
            () => {},
          );
        }
      }, delay);
    } else if (message.type === 'report') {
      void report();
    } else {
      void Promise.all(agents.map((a) => a.close())).then(() => process.exit(0));
    }
  });

  async function report(): Promise<void> {
    const rotations = await metrics.svidRotations.get();
    const value = (result: string) => rotations.values.find((v) => v.labels.result === result)?.value ?? 0;
    const memory = process.memoryUsage();
    const body: HostReport = {
      type: 'report',
      hostIndex: config.hostIndex,
      readyAtMs,
      notReady,
      issueLatencyMs,
      refusedAtMs,
      requests: svidRequestsAtMs.length,
      failures: value('failure'),
      renewals: Math.max(0, value('success') - (config.count - notReady)),
      rssBytes: memory.rss,
      heapBytes: memory.heapUsed,
      baselineRssBytes: baseline.rss,
      baselineHeapBytes: baseline.heapUsed,
    };
    process.send?.(body);
  }

  process.send?.({ type: 'ready' });
}

await main();
