// A TCP tunnel pair built from the src/sidecar/tcp components, without the rest of the sidecar: client side
// TcpOutboundListeners (loopback listener → mTLS to the server), server side a TLS server shaped like the inbound
// listener's dispatch (mesh TLS profile, client certificate required, verifyPeer, ALPN meshauth-tcp/2 (or /1) →
// TcpInboundHandler.adopt) in front of a TCP app. Real SVIDs from TestCa; everything on 127.0.0.1 port 0. Also the
// set-up of the tests that remove a root under outbound tunnels (startRetiringRootTunnel, heldAddress).
import { type AddressInfo, createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { CredentialHolder } from '../../src/agent/credential-holder.js';
import type { CompiledPolicy } from '../../src/authz/index.js';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { SpiffeId } from '../../src/identity/index.js';
import { TrustBundle } from '../../src/pki/index.js';
import { type RunningSidecar, startSidecar } from '../../src/sidecar/index.js';
import {
  type ResolveHost,
  TCP_ALPNS,
  TcpInboundHandler,
  type TcpLimits,
  TcpOutboundListeners,
} from '../../src/sidecar/tcp/index.js';
import { createLogger, type Logger, Metrics, silentLogger } from '../../src/telemetry/index.js';
import { mtlsServerOptions, peerChainDer, verifyPeer } from '../../src/tls/index.js';
import { rootsOf } from '../../src/tls/removed-roots.js';
import { type RawClient, rawClient, until } from './tcp-client.js';
import { TestCa, type TestSvid } from './test-ca.js';

export interface TcpTunnelPair {
  /** Where the client app connects (the outbound listener). */
  readonly port: number;
  /** The server side's TLS port (what the outbound route points at). */
  readonly serverPort: number;
  readonly clientHolder: CredentialHolder;
  readonly serverHolder: CredentialHolder;
  readonly clientMetrics: Metrics;
  readonly serverMetrics: Metrics;
  readonly outbound: TcpOutboundListeners;
  readonly inbound: TcpInboundHandler;
  readonly clientSvid: TestSvid;
  readonly serverSvid: TestSvid;
  close(drainMs?: number): Promise<void>;
}

export interface TcpTunnelPairOptions {
  /** The app the server side pipes to. */
  readonly appPort: number;
  readonly clientId?: string;
  readonly serverId?: string;
  /** The server side presents this SVID instead of one issued for `serverId` (e.g. a defective chain). */
  readonly serverSvid?: TestSvid;
  /** Lifetime of the server side's SVID (default: the test CA's). */
  readonly serverTtlMs?: number;
  /** IDs the outbound route accepts (default: the server's ID). */
  readonly routeIds?: readonly string[];
  readonly policy?: () => CompiledPolicy;
  readonly limits?: Partial<TcpLimits>;
  /** The outbound listeners' shared cap on open tunnels (what the sidecar derives from the open-file limit). */
  readonly maxTotalConnections?: number;
  /** ALPN protocols the server offers (default: h2, http/1.1, meshauth-tcp/2 and /1, as the inbound listener with inbound.tcp). */
  readonly serverAlpn?: readonly string[];
  /** Route address host (default 127.0.0.1). */
  readonly addressHost?: string;
  /** Name resolution for the route address (default: the system resolver). */
  readonly resolveHost?: ResolveHost;
  /** The client side starts without credentials (set them on clientHolder later). */
  readonly clientWithoutSvid?: boolean;
  /** Host the server side's TLS listener binds (default 127.0.0.1; `::ffff:127.0.0.1` is a dual-stack socket). */
  readonly serverHost?: string;
  /** Both sides log here (a test reading their lines); default testLogger(). */
  readonly logger?: Logger;
  /** The trust bundle both sides hold (default: the CA's own). */
  readonly bundle?: TrustBundle;
}

export function testLogger(): Logger {
  // TCP_TEST_LOG=debug shows the components' JSON logs while debugging a test.
  return process.env.TCP_TEST_LOG ? createLogger({ level: process.env.TCP_TEST_LOG }) : silentLogger();
}

export async function startTcpTunnelPair(ca: TestCa, options: TcpTunnelPairOptions): Promise<TcpTunnelPair> {
  const clientSvid = await ca.issue({ id: options.clientId ?? ca.idFor('/ns/shop/sa/client') });
  const serverSvid =
    options.serverSvid ??
    (await ca.issue({
      id: options.serverId ?? ca.idFor('/ns/data/sa/db'),
      ...(options.serverTtlMs === undefined ? {} : { ttlMs: options.serverTtlMs }),
    }));
  const bundle = options.bundle ?? ca.bundle;
  const clientHolder = new CredentialHolder(
    options.clientWithoutSvid === true ? undefined : { svid: clientSvid.svid, bundle },
  );
  const serverHolder = new CredentialHolder({ svid: serverSvid.svid, bundle });
  const clientMetrics = new Metrics();
  const serverMetrics = new Metrics();
  const logger = options.logger ?? testLogger();
  const inbound = new TcpInboundHandler({
    app: { host: '127.0.0.1', port: options.appPort },
    policy: options.policy,
    limits: options.limits,
    metrics: serverMetrics,
    logger: logger.child({ side: 'server' }),
  });
  const profile = { tls12: false };
  const alpn = [...(options.serverAlpn ?? ['h2', 'http/1.1', ...TCP_ALPNS])];
  const server = createTlsServer({ ...mtlsServerOptions(profile, serverHolder.current), ALPNProtocols: alpn });
  serverHolder.subscribe((credentials) => server.setSecureContext(mtlsServerOptions(profile, credentials)));
  const serverSockets = new Set<TLSSocket>();
  server.on('secureConnection', (socket: TLSSocket) => {
    serverSockets.add(socket);
    socket.once('close', () => serverSockets.delete(socket));
    const credentials = serverHolder.current;
    if (
      credentials === undefined ||
      typeof socket.alpnProtocol !== 'string' ||
      !TCP_ALPNS.includes(socket.alpnProtocol)
    ) {
      socket.destroy();
      return;
    }
    try {
      const chain = peerChainDer(socket);
      inbound.adopt(
        socket,
        verifyPeer(socket, ca.trustDomain, credentials.svid.id, new Date(), chain, rootsOf(credentials.bundle)),
      );
    } catch {
      socket.destroy();
    }
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, options.serverHost ?? '127.0.0.1', resolve));
  const serverPort = (server.address() as AddressInfo).port;
  const key = '127.0.0.1:0';
  const outbound = new TcpOutboundListeners({
    routes: new Map([
      [
        key,
        {
          listen: { host: '127.0.0.1', port: 0 },
          address: { host: options.addressHost ?? '127.0.0.1', port: serverPort },
          ids: (options.routeIds ?? [serverSvid.id]).map((id) => SpiffeId.parse(id)),
        },
      ],
    ]),
    trustDomain: ca.trustDomain,
    holder: clientHolder,
    profile,
    metrics: clientMetrics,
    logger: logger.child({ side: 'client' }),
    limits: options.limits,
    resolveHost: options.resolveHost,
    maxTotalConnections: options.maxTotalConnections,
  });
  const ports = await outbound.listen();
  return {
    port: ports.get(key) ?? 0,
    serverPort,
    clientHolder,
    serverHolder,
    clientMetrics,
    serverMetrics,
    outbound,
    inbound,
    clientSvid,
    serverSvid,
    close: async (drainMs = 0) => {
      const deadline = Date.now() + drainMs;
      server.close();
      await Promise.all([outbound.close(deadline), inbound.close(deadline)]);
      for (const socket of serverSockets) socket.destroy();
    },
  };
}

// --- TCP apps for the tests -------------------------------------------------------------------------------------

export interface TcpApp {
  readonly port: number;
  /** Server-side sockets accepted so far (the newest last). */
  readonly sockets: Socket[];
  close(): Promise<void>;
}

/** A TCP app with allowHalfOpen on; `onSocket` gets every accepted connection. */
export async function startTcpApp(onSocket: (socket: Socket) => void): Promise<TcpApp> {
  const sockets: Socket[] = [];
  const server: Server = createNetServer({ allowHalfOpen: true }, (socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Echoes every byte; ends its side when the client ends. */
export function echo(socket: Socket): void {
  socket.pipe(socket);
}

// --- a root that leaves the bundle under outbound tunnels -----------------------------------------------------------

/** A route address whose name is answered when the test says: a connection held between its accept and its handshake. */
export interface HeldAddress {
  /** The route's address host, `db.data.test`. */
  readonly addressHost: string;
  /** Answers 127.0.0.1 once answer() was called. */
  readonly resolveHost: ResolveHost;
  /** Resolves when the outbound asked for the address. */
  readonly asked: Promise<void>;
  answer(): void;
}

export function heldAddress(): HeldAddress {
  let ask = () => {};
  const asked = new Promise<void>((resolve) => {
    ask = resolve;
  });
  let answer = () => {};
  const answered = new Promise<void>((resolve) => {
    answer = resolve;
  });
  return {
    addressHost: 'db.data.test',
    resolveHost: async () => {
      ask();
      await answered;
      return ['127.0.0.1'];
    },
    asked,
    answer,
  };
}

export interface RetiringRootTunnel {
  /** The CA whose root stays, and the pair's. */
  readonly kept: TestCa;
  /** The CA whose root a test removes. */
  readonly retired: TestCa;
  /** Both roots: what both sides of the pair hold. */
  readonly bothRoots: TrustBundle;
  readonly app: TcpApp;
  readonly pair: TcpTunnelPair;
}

/**
 * Two CAs of example.org, an echo app, and a tunnel pair of `kept` in front of it whose both sides hold both roots,
 * its server presenting `serverSvid` (default: an SVID of `retired`, /ns/data/sa/old), its route address `held` if
 * given. The caller closes the pair and the app.
 */
export async function startRetiringRootTunnel(
  options: {
    readonly serverSvid?: (kept: TestCa, retired: TestCa) => Promise<TestSvid>;
    readonly logger?: Logger;
    readonly held?: HeldAddress;
  } = {},
): Promise<RetiringRootTunnel> {
  const kept = await TestCa.create('example.org');
  const retired = await TestCa.create('example.org');
  const serverSvid =
    options.serverSvid === undefined
      ? await retired.issue({ id: retired.idFor('/ns/data/sa/old') })
      : await options.serverSvid(kept, retired);
  const bothRoots = new TrustBundle(kept.trustDomain, [...kept.bundle.roots, ...retired.bundle.roots]);
  const app = await startTcpApp(echo);
  try {
    const pair = await startTcpTunnelPair(kept, {
      appPort: app.port,
      serverSvid,
      bundle: bothRoots,
      ...(options.logger === undefined ? {} : { logger: options.logger }),
      ...(options.held === undefined
        ? {}
        : { addressHost: options.held.addressHost, resolveHost: options.held.resolveHost }),
    });
    return { kept, retired, bothRoots, app, pair };
  } catch (error) {
    await app.close();
    throw error;
  }
}

/**
 * A client of `pair` whose connection has taken its TLS context and waits for `held`'s address when the client
 * side's bundle becomes `bundle` (a root removed); then bytes are sent and the address answered. Resolves once the
 * client is closed or echoed to.
 */
export async function connectAcrossBundleChange(
  pair: TcpTunnelPair,
  held: HeldAddress,
  bundle: TrustBundle,
): Promise<RawClient> {
  const client = await rawClient(pair.port);
  await held.asked;
  pair.clientHolder.set({ svid: pair.clientSvid.svid, bundle });
  let closed = false;
  void client.closed.then(() => {
    closed = true;
  });
  client.socket.write('sent before the handshake ended');
  held.answer();
  await until('the client is closed or echoed to', () => closed || client.received().length > 0);
  return client;
}

/** A whole sidecar started as `meshauth sidecar` runs it, with its own metrics registry. */
export interface DocumentSidecar {
  readonly sidecar: RunningSidecar;
  readonly metrics: Metrics;
}

/**
 * startSidecar with an SVID for `id` from `ca` in its credential holder (no CA is contacted) and the config keys of
 * `document` over loopback defaults (outbound and admin on port 0, a 1 s drain). The caller closes it.
 */
export async function startDocumentSidecar(
  ca: TestCa,
  id: string,
  document: Record<string, unknown>,
): Promise<DocumentSidecar> {
  const svid = await ca.issue({ id });
  const metrics = new Metrics();
  const config = sidecarConfigFromObject(
    {
      trustDomain: 'example.org',
      ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent/bundle.pem', token: '/nonexistent/token' },
      outbound: { listen: '127.0.0.1:0' },
      admin: { listen: '127.0.0.1:0' },
      drainTimeout: '1s',
      ...document,
    },
    `sidecar ${id}`,
  );
  const sidecar = await startSidecar(config, {
    logger: testLogger(),
    metrics,
    holder: new CredentialHolder({ svid: svid.svid, bundle: ca.bundle }),
  });
  return { sidecar, metrics };
}
