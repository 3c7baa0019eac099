// A TCP tunnel pair built from the src/sidecar/tcp components, without the rest of the sidecar: client side
// TcpOutboundListeners (loopback listener → mTLS to the server), server side a TLS server shaped like the inbound
// listener's dispatch (mesh TLS profile, client certificate required, verifyPeer, ALPN meshauth-tcp/2 (or /1) →
// TcpInboundHandler.adopt) in front of a TCP app. Real SVIDs from TestCa; everything on 127.0.0.1 port 0.
import { type AddressInfo, createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { CredentialHolder } from '../../src/agent/credential-holder.js';
import type { CompiledPolicy } from '../../src/authz/index.js';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { SpiffeId } from '../../src/identity/index.js';
import type { TrustBundle } from '../../src/pki/index.js';
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
import type { TestCa, TestSvid } from './test-ca.js';

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
