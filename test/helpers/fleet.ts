// A small fleet for the CA load tests: a cluster signing key with its JWKS file, one projected-style token file per
// simulated pod, N real Agents started at once, and the times of their POST /v1/svid requests and refusals as seen
// by node:http's diagnostics channels (no hook inside the agent).
import { AsyncLocalStorage } from 'node:async_hooks';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, CredentialHolder } from '../../src/agent/index.js';
import type { CaServerOptions } from '../../src/ca/index.js';
import { TrustDomain } from '../../src/identity/index.js';
import { createCsrPem, generateKeyPair } from '../../src/pki/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { type FakeApiServer, reviewingCaOptions, startFakeApiServer } from './fake-kube-apiserver.js';
import { mintProjectedToken, newClusterSigningKey, pod } from './projected-token.js';
import { waitFor } from './wait.js';

export const FLEET_K8S_ISSUER = 'https://kubernetes.default.svc.cluster.local';

export interface FleetCluster {
  readonly jwksFile: string;
  tokenFiles(count: number, prefix: string): Promise<string[]>;
}

/**
 * A fleet cluster behind a stand-in API server, for a CA with `--k8s-token-review`: every service-account token is
 * also reviewed by the API server, whose answers a test can hold to keep requests inside the CA's handler.
 */
export interface ReviewedFleetCluster {
  readonly api: FakeApiServer;
  /** What `startCaServer` takes as `kubernetes`. */
  readonly kubernetes: NonNullable<CaServerOptions['kubernetes']>;
  tokens(count: number, prefix: string): Promise<string[]>;
  tokenFiles(count: number, prefix: string): Promise<string[]>;
  close(): Promise<void>;
}

export async function reviewedFleetCluster(dir: string): Promise<ReviewedFleetCluster> {
  const api = await startFakeApiServer(FLEET_K8S_ISSUER);
  const tokens = (count: number, prefix: string) =>
    Promise.all(Array.from({ length: count }, (_, i) => api.mint({ pod: pod('fleet', `${prefix}-${i}`) })));
  return {
    api,
    // Held reviews must outlast the test that holds them, not the CA's default 5 s for an API call.
    kubernetes: { ...reviewingCaOptions(api), apiTimeoutMs: 120_000 },
    tokens,
    tokenFiles: async (count, prefix) =>
      (await tokens(count, prefix)).map((token, i) => {
        const file = join(dir, `${prefix}-${i}.token`);
        writeFileSync(file, token);
        return file;
      }),
    close: () => api.close(),
  };
}

export async function fleetCluster(dir: string): Promise<FleetCluster> {
  const key = await newClusterSigningKey();
  const jwksFile = join(dir, 'cluster-jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [key.publicJwk] }));
  return {
    jwksFile,
    tokenFiles: async (count, prefix) => {
      const files: string[] = [];
      for (let i = 0; i < count; i += 1) {
        const token = await mintProjectedToken({ issuer: FLEET_K8S_ISSUER, key, pod: pod('fleet', `${prefix}-${i}`) });
        const file = join(dir, `${prefix}-${i}.token`);
        writeFileSync(file, token);
        files.push(file);
      }
      return files;
    },
  };
}

export interface SvidTraffic {
  /** Start times (ms) of every POST /v1/svid. */
  readonly requests: number[];
  /** Times (ms) of every 429/503 answer to one, and its Retry-After header. */
  readonly refusals: { at: number; retryAfter: string | undefined }[];
  /** Per refusal that was followed by another request from the same agent: ms between the two, and Retry-After. */
  readonly retryDelays: { delayMs: number; retryAfterMs: number }[];
  /** Start times (ms) of every GET /v1/bundle, and the fleet agent that sent it. */
  readonly bundleFetches: { agent: string; at: number }[];
  stop(): void;
}

/**
 * Which fleet agent is running: startFleet starts each agent inside its own context (its token file), which its
 * timers, promises and sockets carry along, so a request seen on a diagnostics channel can be told apart by agent.
 */
const agentContext = new AsyncLocalStorage<string>();

/**
 * Records the POST /v1/svid traffic (and the GET /v1/bundle fetches) of every node:http client in this process until stop(). Requests are told
 * apart by the fleet agent that sent them (agentContext), which pairs a refusal with that agent's next attempt.
 */
export function recordSvidTraffic(): SvidTraffic {
  const requests: number[] = [];
  const refusals: { at: number; retryAfter: string | undefined }[] = [];
  const retryDelays: { delayMs: number; retryAfterMs: number }[] = [];
  const bundleFetches: { agent: string; at: number }[] = [];
  const agentOf = new WeakMap<object, string>();
  const lastRefusal = new Map<string, { at: number; retryAfterMs: number }>();
  const isSvidPost = (request: { method: string; path: string }) =>
    request.method === 'POST' && request.path === '/v1/svid';
  const onStart = (message: unknown) => {
    const { request } = message as { request: { method: string; path: string } };
    if (request.method === 'GET' && request.path === '/v1/bundle') {
      const agent = agentContext.getStore();
      if (agent !== undefined) bundleFetches.push({ agent, at: Date.now() });
      return;
    }
    if (!isSvidPost(request)) return;
    const now = Date.now();
    requests.push(now);
    const agent = agentContext.getStore();
    if (agent === undefined) return;
    agentOf.set(request, agent);
    const refused = lastRefusal.get(agent);
    if (refused !== undefined) {
      retryDelays.push({ delayMs: now - refused.at, retryAfterMs: refused.retryAfterMs });
      lastRefusal.delete(agent);
    }
  };
  const onResponse = (message: unknown) => {
    const { request, response } = message as {
      request: { method: string; path: string };
      response: { statusCode: number; headers: Record<string, string | string[] | undefined> };
    };
    if (!isSvidPost(request)) return;
    if (response.statusCode !== 429 && response.statusCode !== 503) return;
    const header = response.headers['retry-after'];
    const retryAfter = typeof header === 'string' ? header : undefined;
    const now = Date.now();
    refusals.push({ at: now, retryAfter });
    const agent = agentOf.get(request);
    if (agent !== undefined) lastRefusal.set(agent, { at: now, retryAfterMs: Number(retryAfter ?? 0) * 1000 });
  };
  subscribe('http.client.request.start', onStart);
  subscribe('http.client.response.finish', onResponse);
  return {
    requests,
    refusals,
    retryDelays,
    bundleFetches,
    stop: () => {
      unsubscribe('http.client.request.start', onStart);
      unsubscribe('http.client.response.finish', onResponse);
    },
  };
}

export interface Fleet {
  readonly agents: Agent[];
  readonly holders: CredentialHolder[];
  readonly metrics: Metrics;
  /** Agents holding an SVID. */
  ready(): number;
  close(): Promise<void>;
}

export function startFleet(options: {
  readonly caUrl: string;
  readonly bundleFile: string;
  readonly tokenFiles: readonly string[];
  readonly trustDomain?: string;
  /** The agents' bundle refresh interval (default 1 h: none in a short test). */
  readonly bundleRefreshMs?: number;
}): Fleet {
  const metrics = new Metrics();
  const trustDomain = TrustDomain.parse(options.trustDomain ?? 'example.org');
  const holders = options.tokenFiles.map(() => new CredentialHolder());
  const agents = options.tokenFiles.map(
    (tokenFile, i) =>
      new Agent({
        trustDomain,
        caUrl: options.caUrl,
        bundleFile: options.bundleFile,
        tokenFile,
        holder: holders[i] as CredentialHolder,
        logger: silentLogger(),
        metrics,
        bundleRefreshMs: options.bundleRefreshMs ?? 3_600_000,
        maxBackoffMs: 10_000,
      }),
  );
  for (const [i, agent] of agents.entries()) {
    agentContext.run(options.tokenFiles[i] as string, () => agent.start());
  }
  return {
    agents,
    holders,
    metrics,
    ready: () => holders.filter((h) => h.current !== undefined).length,
    close: async () => {
      await Promise.all(agents.map((a) => a.close()));
    },
  };
}

/** Share (%) of `times` in the busiest 100 ms bucket. */
export function busiestBucketPercent(times: readonly number[]): number {
  const buckets = new Map<number, number>();
  for (const t of times) buckets.set(Math.floor(t / 100), (buckets.get(Math.floor(t / 100)) ?? 0) + 1);
  return (100 * Math.max(0, ...buckets.values())) / Math.max(1, times.length);
}

/**
 * Fills `count` of the CA's signing slots with POST /v1/svid requests whose body never comes (the handler waits
 * for it), so the next request meets a full queue at once; release() drops them. Waits until all are admitted.
 */
/**
 * Fills `tokens.length` of the CA's signing places with complete bootstrap requests that wait inside its handler for
 * TokenReview answers the API server holds (a body still arriving takes no place). release() lets the reviews answer
 * and closes the requests.
 */
export async function holdSigningSlots(
  caUrl: string,
  bundlePem: string,
  cluster: ReviewedFleetCluster,
  tokens: readonly string[],
  queueDepth: () => Promise<number>,
): Promise<{ release(): void }> {
  const { request } = await import('node:https');
  const url = new URL('/v1/svid', caUrl);
  const answerReviews = cluster.api.holdReviews();
  const csrPem = await createCsrPem(await generateKeyPair('p256'));
  const held = tokens.map((token) => {
    const body = JSON.stringify({ csr: csrPem, token });
    const req = request(url, {
      method: 'POST',
      ca: bundlePem,
      checkServerIdentity: () => undefined,
      headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
    });
    req.on('error', () => {});
    req.on('response', (res) => res.resume());
    req.end(body);
    return req;
  });
  await waitFor(
    `the CA to admit ${tokens.length} held requests`,
    async () => (await queueDepth()) >= tokens.length,
    15_000,
    20,
  ).catch((error: Error) => {
    for (const req of held) req.destroy();
    answerReviews();
    throw error;
  });
  return {
    release: () => {
      for (const req of held) req.destroy();
      answerReviews();
    },
  };
}

/** The value of an unlabelled gauge in a Metrics registry (0 before it was first set). */
export async function gaugeOf(metrics: Metrics, name: string): Promise<number> {
  const match = new RegExp(`^${name} (\\d+)$`, 'm').exec(await metrics.exposition());
  return match === null ? 0 : Number(match[1]);
}

/** `meshauth_ca_queue_depth` of a Metrics registry. */
export function queueDepthOf(metrics: Metrics): Promise<number> {
  return gaugeOf(metrics, 'meshauth_ca_queue_depth');
}
