// Builders for sidecar integration tests (linkerd-style harness): a recording plain-HTTP app, a sidecar with
// TestCa credentials in a static CredentialHolder, and an A → B sidecar pair. Everything listens on 127.0.0.1
// port 0; every start returns its own close, which the tests register as teardown right away.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CredentialHolder } from '../../src/agent/credential-holder.js';
import { type SidecarConfig, sidecarConfigFromObject } from '../../src/config/index.js';
import type { TrustBundle } from '../../src/pki/index.js';
import type { EndUserOutcome } from '../../src/sidecar/inbound/inbound-hooks.js';
import { type RunningSidecar, type SidecarDependencies, startSidecar } from '../../src/sidecar/index.js';
import { createLogger, Metrics, silentLogger } from '../../src/telemetry/index.js';
import { type RawApp, type RawAppConnection, startRawApp } from './raw-app.js';
import { TestCa, type TestSvid, writeSvidFiles } from './test-ca.js';

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly httpVersion: string;
  readonly headers: IncomingMessage['headers'];
  readonly rawHeaders: readonly string[];
  readonly bodyBytes: number;
}

export interface TestApp {
  readonly port: number;
  readonly seen: SeenRequest[];
  /** Every request whose head arrived, with the body bytes so far: a cut upload shows here, never in `seen`. */
  readonly arriving: { readonly url: string; bodyBytes: number }[];
  /** Connections to the app open now (a sidecar's app pool). */
  connectionsOpen(): number;
  close(): Promise<void>;
}

export type AppHandler = (req: IncomingMessage, res: ServerResponse, seen: SeenRequest) => void;

/** Default app behaviour: drain the body, answer 200 JSON echoing what it saw. */
export const echoApp: AppHandler = (_req, res, seen) => {
  const body = JSON.stringify({ method: seen.method, url: seen.url, headers: seen.headers, bytes: seen.bodyBytes });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
};

/** A plain HTTP app on 127.0.0.1 that records every request (after reading its body) and calls `handler`. */
export async function startApp(handler: AppHandler = echoApp): Promise<TestApp> {
  const seen: SeenRequest[] = [];
  const arriving: { url: string; bodyBytes: number }[] = [];
  const server: Server = createServer((req, res) => {
    let bytes = 0;
    const arrival = { url: req.url ?? '', bodyBytes: 0 };
    arriving.push(arrival);
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      arrival.bodyBytes = bytes;
    });
    req.on('end', () => {
      const record: SeenRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        httpVersion: req.httpVersion,
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        bodyBytes: bytes,
      };
      seen.push(record);
      handler(req, res, record);
    });
  });
  let open = 0;
  server.on('connection', (socket) => {
    open += 1;
    socket.once('close', () => {
      open -= 1;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    arriving,
    connectionsOpen: () => open,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface TestConfigOptions {
  readonly trustDomain?: string;
  readonly appPort: number;
  readonly routes?: Record<string, { address: string; ids?: string[] }>;
  readonly egress?: string[];
  /** `outbound.dns.servers`: where DNS names of route addresses are resolved. */
  readonly dnsServers?: string[];
  readonly tls12?: boolean;
  readonly appTimeout?: string;
  readonly outboundTimeout?: string;
  readonly drainTimeout?: string;
  /** End users required, from one ES256 issuer whose JWKS is `${url}/jwks`, for `audience`. */
  readonly endUserIssuer?: { readonly url: string; readonly audience: string };
  /** `inbound.endUser` as given (issuers, vouchers, claims…), when endUserIssuer's shape is not the one wanted. */
  readonly endUser?: Readonly<Record<string, unknown>>;
  /** `outbound.http2` (default true). */
  readonly http2?: boolean;
}

export function testConfig(options: TestConfigOptions): SidecarConfig {
  return sidecarConfigFromObject(
    {
      trustDomain: options.trustDomain ?? 'example.org',
      ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent/bundle.pem', token: '/nonexistent/token' },
      inbound: {
        listen: '127.0.0.1:0',
        app: `127.0.0.1:${options.appPort}`,
        ...(options.tls12 === undefined ? {} : { tls12: options.tls12 }),
        ...(options.appTimeout === undefined ? {} : { appTimeout: options.appTimeout }),
        ...(options.endUserIssuer === undefined ? {} : { endUser: endUserRequired(options.endUserIssuer) }),
        ...(options.endUser === undefined ? {} : { endUser: options.endUser }),
      },
      outbound: {
        listen: '127.0.0.1:0',
        routes: options.routes ?? {},
        egress: options.egress ?? [],
        ...(options.outboundTimeout === undefined ? {} : { timeout: options.outboundTimeout }),
        ...(options.dnsServers === undefined ? {} : { dns: { servers: options.dnsServers } }),
        ...(options.http2 === undefined ? {} : { http2: options.http2 }),
      },
      admin: { listen: '127.0.0.1:0' },
      ...(options.drainTimeout === undefined ? {} : { drainTimeout: options.drainTimeout }),
    },
    'test-config',
  );
}

function endUserRequired(issuer: { readonly url: string; readonly audience: string }) {
  return {
    required: true,
    issuers: [
      { issuer: issuer.url, audiences: [issuer.audience], algorithms: ['ES256'], jwksUri: `${issuer.url}/jwks` },
    ],
  };
}

export interface TestSidecar {
  readonly sidecar: RunningSidecar;
  readonly holder: CredentialHolder;
  readonly metrics: Metrics;
  readonly svid: TestSvid;
  readonly config: SidecarConfig;
}

/** TLS options for a test's own peer server: `svid`'s chain and key, a client certificate from `ca` required. */
export function peerServerTls(svid: TestSvid, ca: TestCa) {
  return { cert: svid.chainPem, key: svid.keyPem, ca: ca.bundlePem, requestCert: true, rejectUnauthorized: true };
}

/** The host a routed sidecar's outbound sends to its raw peer (startRoutedSidecar). */
export const PEER_HOST = 'b.mesh';

/**
 * A sidecar (SPIFFE ID …/ns/a/sa/a, no app) whose outbound routes `b.mesh` to a peer server of the test's own on
 * 127.0.0.1:`peerPort` that must present `peerId`: for tests of what the outbound does with a peer's bytes.
 */
export function startRoutedSidecar(
  ca: TestCa,
  peerPort: number,
  peerId: string,
  options: Omit<TestConfigOptions, 'appPort' | 'routes'> = {},
  extra: Parameters<typeof startTestSidecar>[3] = {},
): Promise<TestSidecar> {
  return startTestSidecar(
    ca,
    ca.idFor('/ns/a/sa/a'),
    testConfig({
      ...options,
      appPort: 1,
      routes: { [PEER_HOST]: { address: `127.0.0.1:${peerPort}`, ids: [peerId] } },
    }),
    extra,
  );
}

/** `meshauth_connections_open{direction}`: connections a listener's guard accepted (handed on) and not yet closed. */
export async function connectionsOpen(metrics: Metrics, direction: string): Promise<number> {
  return (await metrics.connectionsOpen.get()).values.find((v) => v.labels.direction === direction)?.value ?? 0;
}

/** `meshauth_requests_total{direction,code}`, summed over its other labels. */
export async function requestsCounted(metrics: Metrics, direction: string, code: string): Promise<number> {
  return (await metrics.requests.get()).values
    .filter((v) => v.labels.direction === direction && v.labels.code === code)
    .reduce((sum, v) => sum + v.value, 0);
}

/** The sum of `meshauth_request_duration_seconds{direction}`: with one request between two reads, its duration. */
export async function durationSum(metrics: Metrics, direction: string): Promise<number> {
  return (
    (await metrics.requestDuration.get()).values.find(
      (v) => v.metricName === 'meshauth_request_duration_seconds_sum' && v.labels.direction === direction,
    )?.value ?? 0
  );
}

/** `meshauth_streams_reset_total{direction,reason}`. */
export async function streamsResetCounted(metrics: Metrics, direction: string, reason: string): Promise<number> {
  return (
    (await metrics.streamsReset.get()).values.find(
      (v) => v.labels.direction === direction && v.labels.reason === reason,
    )?.value ?? 0
  );
}

/** Starts a sidecar with a fresh SVID for `id` from `ca` in a static holder (no agent). */
export async function startTestSidecar(
  ca: TestCa,
  id: string,
  config: SidecarConfig,
  extra: Partial<Pick<SidecarDependencies, 'hooks' | 'logger' | 'inboundLimits' | 'tcpLimits'>> & {
    bundle?: TrustBundle;
  } = {},
): Promise<TestSidecar> {
  const svid = await ca.issue({ id });
  const holder = new CredentialHolder({ svid: svid.svid, bundle: extra.bundle ?? ca.bundle });
  const metrics = new Metrics();
  const sidecar = await startSidecar(config, {
    // SIDECAR_TEST_LOG=debug shows the sidecars' JSON logs while debugging a test.
    logger:
      extra.logger ??
      (process.env.SIDECAR_TEST_LOG ? createLogger({ level: process.env.SIDECAR_TEST_LOG }) : silentLogger()),
    metrics,
    holder,
    ...(extra.hooks === undefined ? {} : { hooks: extra.hooks }),
    ...(extra.inboundLimits === undefined ? {} : { inboundLimits: extra.inboundLimits }),
    ...(extra.tcpLimits === undefined ? {} : { tcpLimits: extra.tcpLimits }),
  });
  return { sidecar, holder, metrics, svid, config };
}

/** An end-user stage that holds every request whose target starts with `/held/` until the test calls `held.get(target)`. */
function heldStageHooks(held: Map<string, () => void>): NonNullable<SidecarDependencies['hooks']> {
  return {
    authenticateEndUser: (view) =>
      view.target.startsWith('/held/')
        ? new Promise<EndUserOutcome>((resolve) => held.set(view.target, () => resolve({})))
        : Promise.resolve({}),
  };
}

/** A raw app behind B (startRawAppBehind), a calling peer's SVID and B's inbound counters. */
export interface RawAppBehind {
  readonly ca: TestCa;
  /** The calling peer, `/ns/shop/sa/peer`. */
  readonly peer: TestSvid;
  readonly app: RawApp;
  readonly b: TestSidecar;
  /** `meshauth_requests_rejected_total` on the inbound, as [code, count] pairs. */
  rejected(): Promise<Array<[string | number | undefined, number]>>;
  /** `meshauth_streams_reset_total{direction="inbound",reason="stream_idle_timeout"}` (0 before the first). */
  idleResets(): Promise<number>;
  close(): Promise<void>;
}

/** The stalled-body tests' set-up (startHeldStage): a raw app behind B, held by a stage, and a peer SVID. */
export type HeldStage = RawAppBehind;

export interface RawAppBehindOptions {
  /** Sees each app connection's bytes (startRawApp). */
  readonly onAppData?: (connection: RawAppConnection) => void;
  /** `inbound.appTimeout` (the config's default when left out). */
  readonly appTimeout?: string;
  readonly inboundLimits?: SidecarDependencies['inboundLimits'];
  readonly hooks?: SidecarDependencies['hooks'];
  readonly logger?: SidecarDependencies['logger'];
}

/**
 * A CA of example.org, a peer SVID (`/ns/shop/sa/peer`), a raw app calling `onAppData` (startRawApp) and B
 * (`/ns/shop/sa/b`) in front of it: for tests that must see or misbehave at the app's bytes.
 */
export async function startRawAppBehind(options: RawAppBehindOptions = {}): Promise<RawAppBehind> {
  const ca = await TestCa.create('example.org');
  const peer = await ca.issue({ id: ca.idFor('/ns/shop/sa/peer') });
  const app = await startRawApp(options.onAppData);
  const config = testConfig({
    appPort: app.port,
    ...(options.appTimeout === undefined ? {} : { appTimeout: options.appTimeout }),
  });
  const b = await startTestSidecar(ca, ca.idFor('/ns/shop/sa/b'), config, {
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    ...(options.inboundLimits === undefined ? {} : { inboundLimits: options.inboundLimits }),
    ...(options.hooks === undefined ? {} : { hooks: options.hooks }),
  });
  return {
    ca,
    peer,
    app,
    b,
    rejected: async () => {
      const values = (await b.metrics.requestsRejected.get()).values.filter((v) => v.labels.direction === 'inbound');
      return values.map((v) => [v.labels.code, v.value]);
    },
    idleResets: async () => {
      const values = (await b.metrics.streamsReset.get()).values;
      return (
        values.find((v) => v.labels.direction === 'inbound' && v.labels.reason === 'stream_idle_timeout')?.value ?? 0
      );
    },
    close: async () => {
      await b.sidecar.close(0);
      await app.close();
    },
  };
}

/**
 * The stalled-body tests' set-up: startRawAppBehind with an end-user stage holding requests on `/held/…` until the
 * test calls `held.get(target)`, and an idle exchange cut after max(streamIdleTimeout 300 ms, appTimeout 200 ms + 1 s)
 * = 1.2 s (more `inboundLimits` if given).
 */
export function startHeldStage(
  logger: SidecarDependencies['logger'],
  held: Map<string, () => void>,
  onAppData?: (connection: RawAppConnection) => void,
  inboundLimits?: SidecarDependencies['inboundLimits'],
): Promise<HeldStage> {
  return startRawAppBehind({
    logger,
    ...(onAppData === undefined ? {} : { onAppData }),
    appTimeout: '200ms',
    inboundLimits: { streamIdleTimeoutMs: 300, ...inboundLimits },
    hooks: heldStageHooks(held),
  });
}

/** An inbound under test (startInboundServer) with what a client needs to reach it. */
export interface InboundServer {
  readonly ca: TestCa;
  readonly app: TestApp;
  readonly sidecar: TestSidecar;
  /** A client SVID from `ca`, `/ns/<namespace>/sa/client`. */
  readonly client: TestSvid;
  /** `client` written as PEM files for external tools (openssl, curl), in `dir`. */
  readonly clientFiles: { readonly cert: string; readonly key: string };
  /** A temp directory the test may write more files to; `close` removes it. */
  readonly dir: string;
  close(): Promise<void>;
}

export interface InboundServerOptions {
  /** The namespace of the server's and the client's IDs (default `shop`). */
  readonly namespace?: string;
  readonly tls12?: boolean;
  readonly inboundLimits?: SidecarDependencies['inboundLimits'];
}

/**
 * A fresh CA (example.org), an echo app, a sidecar `/ns/<namespace>/sa/server` in front of it and a client SVID
 * `/ns/<namespace>/sa/client`, also as files: the set-up of the inbound TLS tests.
 */
export async function startInboundServer(options: InboundServerOptions = {}): Promise<InboundServer> {
  const ns = options.namespace ?? 'shop';
  const ca = await TestCa.create();
  const app = await startApp();
  const dir = mkdtempSync(join(tmpdir(), 'meshauth-inbound-'));
  try {
    const sidecar = await startTestSidecar(
      ca,
      ca.idFor(`/ns/${ns}/sa/server`),
      testConfig({ appPort: app.port, ...(options.tls12 === undefined ? {} : { tls12: options.tls12 }) }),
      options.inboundLimits === undefined ? {} : { inboundLimits: options.inboundLimits },
    );
    const client = await ca.issue({ id: ca.idFor(`/ns/${ns}/sa/client`) });
    return {
      ca,
      app,
      sidecar,
      client,
      clientFiles: writeSvidFiles(dir, 'client', client),
      dir,
      close: async () => {
        await sidecar.sidecar.close(0);
        await app.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

export interface SidecarPair {
  readonly appB: TestApp;
  readonly a: TestSidecar;
  readonly b: TestSidecar;
  readonly idA: string;
  readonly idB: string;
  /** `http://127.0.0.1:<A outbound>`: what app A uses as HTTP_PROXY. */
  readonly proxyUrl: string;
  close(): Promise<void>;
}

export interface PairOptions {
  readonly appHandler?: AppHandler;
  /** IDs the route to B accepts (default: B's own ID). */
  readonly routeIds?: string[];
  /** The keys of A's routes to B (default `b.mesh`), host patterns such as `*.*` too. */
  readonly routeKeys?: readonly string[];
  readonly appTimeout?: string;
  readonly drainTimeout?: string;
  readonly egress?: string[];
  /** Hooks of B's inbound (authz / authn) and A's outbound. */
  readonly hooksB?: SidecarDependencies['hooks'];
  readonly hooksA?: SidecarDependencies['hooks'];
  /** A's logger (default silent), for a test that checks the line a rejection writes. */
  readonly loggerA?: SidecarDependencies['logger'];
  /** A's `outbound.http2: false`: A talks HTTP/1.1 to B (undici pool) instead of one HTTP/2 session. */
  readonly http1?: boolean;
  /** Overrides of B's inbound limits (tests shorten its headersTimeout). */
  readonly inboundLimitsB?: SidecarDependencies['inboundLimits'];
}

/** app A → A's outbound → B's inbound → app B, with route host `b.mesh` (or `routeKeys`). */
export async function startPair(ca: TestCa, options: PairOptions = {}): Promise<SidecarPair> {
  const idA = ca.idFor('/ns/shop/sa/a');
  const idB = ca.idFor('/ns/shop/sa/b');
  const appB = await startApp(options.appHandler);
  const b = await startTestSidecar(
    ca,
    idB,
    testConfig({
      appPort: appB.port,
      ...(options.appTimeout === undefined ? {} : { appTimeout: options.appTimeout }),
      ...(options.drainTimeout === undefined ? {} : { drainTimeout: options.drainTimeout }),
    }),
    {
      ...(options.hooksB === undefined ? {} : { hooks: options.hooksB }),
      ...(options.inboundLimitsB === undefined ? {} : { inboundLimits: options.inboundLimitsB }),
    },
  );
  const routeToB = { address: `127.0.0.1:${b.sidecar.inboundPort}`, ids: options.routeIds ?? [idB] };
  const configA = testConfig({
    appPort: 1,
    routes: Object.fromEntries((options.routeKeys ?? ['b.mesh']).map((key) => [key, routeToB])),
    ...(options.egress === undefined ? {} : { egress: options.egress }),
    ...(options.drainTimeout === undefined ? {} : { drainTimeout: options.drainTimeout }),
  });
  const a = await startTestSidecar(
    ca,
    idA,
    options.http1 === true ? { ...configA, outbound: { ...configA.outbound, http2: false } } : configA,
    {
      ...(options.hooksA === undefined ? {} : { hooks: options.hooksA }),
      ...(options.loggerA === undefined ? {} : { logger: options.loggerA }),
    },
  );
  return {
    appB,
    a,
    b,
    idA,
    idB,
    proxyUrl: `http://127.0.0.1:${a.sidecar.outboundPort}`,
    close: async () => {
      await a.sidecar.close(0);
      await b.sidecar.close(0);
      await appB.close();
    },
  };
}

export interface ProxyResponse {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

/**
 * What an app does with HTTP_PROXY: an HTTP/1.1 request in proxy form (`GET http://host/path`) to the outbound
 * listener. `origin: true` sends origin form with a Host header instead. Uses a fresh agent-less connection.
 */
export function viaProxy(
  outboundPort: number,
  url: string,
  options: {
    method?: string;
    headers?: Record<string, string | string[]>;
    body?: string | Buffer;
    origin?: boolean;
  } = {},
): Promise<ProxyResponse> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: outboundPort,
        method: options.method ?? 'GET',
        path: options.origin ? `${target.pathname}${target.search}` : url,
        headers: { host: target.host, ...options.headers },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

// --- external tools (curl, openssl, promtool), run asynchronously so in-process servers keep serving ---

export interface CommandResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function available(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

export function runCommand(
  command: string,
  args: readonly string[],
  options: { input?: string; timeoutMs?: number; env?: Readonly<Record<string, string>> } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    // `env` adds to this process's environment (the child still finds node, HOME, …).
    const env = options.env === undefined ? process.env : { ...process.env, ...options.env };
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 15_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}
