// The outbound listener (SPEC §7): plain HTTP/1.1 from the local app on loopback, in proxy form
// (`GET http://orders.shop/x`, HTTP_PROXY) or origin form with Host. The host picks the route; the request
// leaves over mTLS to the peer's inbound listener with identity headers stripped. CONNECT opens a raw TCP
// tunnel only to hosts in `outbound.egress`. Between sidecars: one node:http2 session per peer (PeerSessions),
// or undici HTTP/1.1 pools with `outbound.http2: false` (PeerPools).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { Pool } from 'undici';
import type { CredentialHolder } from '../../agent/credential-holder.js';
import { parseHostPort, type RouteConfig, type SidecarConfig } from '../../config/index.js';
import { isMeshauthError, MeshauthError } from '../../errors/index.js';
import type { Logger, Metrics } from '../../telemetry/index.js';
import { DataPlaneTelemetry } from '../data-plane-telemetry.js';
import { endSocketWithError, writeErrorH1 } from '../error-response.js';
import { type DrainState, ForwardHandler } from '../forward-handler.js';
import { copyRequestHeaders, HAS_BODY, OUTBOUND_ORIGIN_FORM, OUTBOUND_PROXY_FORM } from '../http-headers.js';
import { listenOn, waitUntil } from '../listen.js';
import { type EgressMatcher, egressMatcher } from './egress-matcher.js';
import { H2Exchange, type H2ExchangeContext } from './h2-exchange.js';
import type { OnOutboundRequest } from './outbound-hooks.js';
import { PeerPools } from './peer-pools.js';
import { PeerSessions, type PeerTarget } from './peer-sessions.js';

export interface OutboundListenerOptions {
  readonly config: SidecarConfig;
  readonly holder: CredentialHolder;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly onOutboundRequest?: OnOutboundRequest;
  readonly now?: () => Date;
}

export const OUTBOUND_LIMITS = Object.freeze({
  maxHeaderBytes: 16 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 300_000,
  keepAliveTimeoutMs: 65_000,
});

export class OutboundListener {
  readonly #config: SidecarConfig;
  readonly #holder: CredentialHolder;
  readonly #logger: Logger;
  readonly #telemetry: DataPlaneTelemetry;
  readonly #server: Server;
  readonly #peers: PeerPools;
  readonly #sessions: PeerSessions | undefined;
  readonly #h2Context: H2ExchangeContext;
  readonly #egress: EgressMatcher;
  readonly #onOutboundRequest: OnOutboundRequest | undefined;
  readonly #drain: DrainState = { draining: false };
  readonly #sockets = new Set<Socket>();
  readonly #tunnels = new Set<Duplex>();
  #port = 0;

  constructor(options: OutboundListenerOptions) {
    this.#config = options.config;
    this.#holder = options.holder;
    this.#logger = options.logger;
    this.#onOutboundRequest = options.onOutboundRequest;
    this.#telemetry = new DataPlaneTelemetry('outbound', options.metrics, options.logger);
    this.#egress = egressMatcher(options.config.outbound.egress);
    const peerOptions = {
      trustDomain: options.config.trustDomain,
      holder: options.holder,
      profile: { tls12: options.config.inbound.tls12 },
      timeoutMs: options.config.outbound.timeoutMs,
      ...(options.now === undefined ? {} : { now: options.now }),
    };
    this.#peers = new PeerPools(peerOptions);
    this.#sessions = options.config.outbound.http2
      ? new PeerSessions({ ...peerOptions, pools: this.#peers })
      : undefined;
    this.#h2Context = {
      telemetry: this.#telemetry,
      classify: classifyPeerError,
      drain: this.#drain,
      timeoutMs: options.config.outbound.timeoutMs,
    };
    this.#server = createServer(
      {
        insecureHTTPParser: false,
        maxHeaderSize: OUTBOUND_LIMITS.maxHeaderBytes,
        headersTimeout: OUTBOUND_LIMITS.headersTimeoutMs,
        requestTimeout: OUTBOUND_LIMITS.requestTimeoutMs,
        keepAliveTimeout: OUTBOUND_LIMITS.keepAliveTimeoutMs,
        connectionsCheckingInterval: 1_000,
        noDelay: true,
      },
      (req, res) => this.#onRequest(req, res),
    );
    this.#server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.#onConnect(req, socket, head),
    );
    this.#server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
  }

  get port(): number {
    return this.#port;
  }

  async listen(): Promise<number> {
    this.#port = await listenOn(this.#server, this.#config.outbound.listen);
    return this.#port;
  }

  async close(deadline: number): Promise<void> {
    this.#drain.draining = true;
    this.#server.close();
    await waitUntil(deadline, () => {
      this.#server.closeIdleConnections();
      return this.#sockets.size === 0;
    });
    this.#server.closeAllConnections();
    for (const tunnel of this.#tunnels) tunnel.destroy();
    for (const socket of this.#sockets) socket.destroy();
    await Promise.all([this.#sessions?.close(deadline), this.#peers.close(deadline)]);
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const startedAt = performance.now();
    res.on('error', ignore);
    if (this.#holder.current === undefined) {
      this.#reject(
        res,
        '',
        new MeshauthError('MESHAUTH_ERR_NOT_READY', 'no SVID yet', { reason: 'not_ready' }),
        startedAt,
      );
      return;
    }
    const url = req.url as string;
    let authority: string | undefined;
    let path: string;
    let proxyForm = false;
    if (url.charCodeAt(0) === 0x2f /* / */) {
      authority = hostHeader(req.rawHeaders);
      path = url;
    } else if (url.startsWith('http://')) {
      const slash = url.indexOf('/', 7);
      authority = slash === -1 ? url.slice(7) : url.slice(7, slash);
      path = slash === -1 ? '/' : url.slice(slash);
      proxyForm = true;
    } else {
      const error = new MeshauthError('MESHAUTH_ERR_BAD_REQUEST', 'request-target must be http:// or origin form', {
        reason: 'target_form',
      });
      this.#reject(res, '', error, startedAt);
      return;
    }
    const host = authority === undefined ? '' : hostOf(authority);
    const route = this.#config.outbound.routes.get(host);
    if (route === undefined) {
      const error = new MeshauthError('MESHAUTH_ERR_ROUTE_NOT_FOUND', `no outbound route for host ${host}`, {
        reason: 'no_route',
        detail: { host },
      });
      this.#reject(res, '', error, startedAt, { host });
      return;
    }
    const target = this.#sessions === undefined ? this.#peers.poolFor(route) : this.#sessions.targetFor(route);
    if (target === undefined) {
      this.#reject(
        res,
        '',
        new MeshauthError('MESHAUTH_ERR_NOT_READY', 'no SVID yet', { reason: 'not_ready' }),
        startedAt,
      );
      return;
    }
    const headers: string[] = [];
    const flags = copyRequestHeaders(req.rawHeaders, proxyForm ? OUTBOUND_PROXY_FORM : OUTBOUND_ORIGIN_FORM, headers);
    if (proxyForm) headers.push('host', authority as string);
    const method = req.method as string;
    const body = (flags & HAS_BODY) !== 0 ? req : null;
    const hook = this.#onOutboundRequest;
    let pending: void | Promise<void> | undefined;
    if (hook !== undefined) {
      try {
        pending = hook({ route, method, path, headers });
      } catch (error) {
        this.#hookFailed(res, route, error, startedAt);
        return;
      }
    }
    // The usual case (no hook, or a hook that finished synchronously) allocates no promise.
    if (pending === undefined && !(target instanceof Promise)) {
      this.#forward(target, route, res, method, path, headers, body, startedAt);
      return;
    }
    Promise.resolve(pending).then(
      () =>
        Promise.resolve(target).then(
          (ready) => this.#forward(ready, route, res, method, path, headers, body, startedAt),
          (error: unknown) => this.#peerFailed(res, route, error, startedAt),
        ),
      (error: unknown) => this.#hookFailed(res, route, error, startedAt),
    );
  }

  #forward(
    target: PeerTarget,
    route: RouteConfig,
    res: ServerResponse,
    method: string,
    path: string,
    headers: string[],
    body: IncomingMessage | null,
    startedAt: number,
  ): void {
    const peerId = this.#peers.peerIdOf(route);
    if (target instanceof Pool) {
      const handler = new ForwardHandler(
        res,
        false,
        peerId,
        startedAt,
        this.#telemetry,
        classifyPeerError,
        this.#drain,
      );
      target.dispatch({ path, method: method as 'GET', headers, body }, handler);
      return;
    }
    new H2Exchange(res, peerId, startedAt, this.#h2Context).start(target, method, path, headers, body);
  }

  #hookFailed(res: ServerResponse, route: RouteConfig, error: unknown, startedAt: number): void {
    const rejection = isMeshauthError(error)
      ? error
      : new MeshauthError('MESHAUTH_ERR_PASSPORT_INVALID', 'outbound hook failed', { cause: error });
    this.#reject(res, this.#peers.peerIdOf(route), rejection, startedAt);
  }

  #peerFailed(res: ServerResponse, route: RouteConfig, error: unknown, startedAt: number): void {
    const cause = error instanceof Error ? error : new Error(String(error));
    new H2Exchange(res, this.#peers.peerIdOf(route), startedAt, this.#h2Context).fail(cause);
  }

  #reject(
    res: ServerResponse,
    peerId: string,
    error: MeshauthError,
    startedAt: number,
    extra?: Readonly<Record<string, string>>,
  ): void {
    writeErrorH1(res, error, extra, this.#drain.draining);
    this.#telemetry.rejected(peerId, error, startedAt);
  }

  /** `CONNECT host:port`: a TCP tunnel to an allowed egress host, or 403 (no TLS interception). */
  #onConnect(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const startedAt = performance.now();
    socket.on('error', ignore);
    // The same strict host:port parser as the config (host-name characters, bracketed IPv6), never a hand split.
    const target = parseHostPort(req.url ?? '');
    if (target === undefined || target.port === 0) {
      this.#rejectTunnel(socket, new MeshauthError('MESHAUTH_ERR_BAD_REQUEST', 'bad CONNECT target'), startedAt);
      return;
    }
    const host = target.host.toLowerCase();
    const { port } = target;
    if (this.#drain.draining || !this.#egress(host)) {
      const error = new MeshauthError('MESHAUTH_ERR_EGRESS_FORBIDDEN', `egress to ${host} is not allowed`, {
        reason: 'egress_forbidden',
        detail: { host },
      });
      this.#rejectTunnel(socket, error, startedAt, { host });
      return;
    }
    const upstream = netConnect({ host, port });
    this.#tunnels.add(upstream);
    upstream.once('close', () => {
      this.#tunnels.delete(upstream);
      socket.destroy();
    });
    socket.once('close', () => upstream.destroy());
    upstream.once('error', (cause: Error) => {
      if (upstream.connecting || !upstream.readable) {
        const error = new MeshauthError('MESHAUTH_ERR_UPSTREAM_UNAVAILABLE', `egress to ${host} failed`, {
          reason: 'connect',
          cause,
        });
        this.#rejectTunnel(socket, error, startedAt, { host });
      }
    });
    upstream.once('connect', () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
      this.#telemetry.completed('', 200, startedAt);
      this.#logger.debug({ direction: 'outbound', host, port }, 'egress tunnel opened');
    });
  }

  #rejectTunnel(
    socket: Duplex,
    error: MeshauthError,
    startedAt: number,
    extra?: Readonly<Record<string, string>>,
  ): void {
    if (socket.writable) endSocketWithError(socket, error, extra);
    this.#telemetry.rejected('', error, startedAt);
  }
}

/** Peer-side failures: identity mismatch → 502, timeouts → 504, everything else (refused, reset, TLS) → 503. */
export function classifyPeerError(error: Error): MeshauthError {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (isMeshauthError(e)) return e;
  }
  const code = (error as Error & { code?: string }).code ?? '';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new MeshauthError('MESHAUTH_ERR_UPSTREAM_TIMEOUT', 'peer did not answer in time', {
      reason: 'timeout',
      cause: error,
    });
  }
  return new MeshauthError('MESHAUTH_ERR_PEER_UNAVAILABLE', 'peer sidecar unavailable', {
    reason: 'connect',
    cause: error,
  });
}

/** The Host header from a raw list (avoids building req.headers on the hot path). */
function hostHeader(raw: readonly string[]): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 4 && name.toLowerCase() === 'host') return raw[i + 1];
  }
  return undefined;
}

/** Lower-case host of an authority, without port or IPv6 brackets. */
function hostOf(authority: string): string {
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    return (end === -1 ? authority.slice(1) : authority.slice(1, end)).toLowerCase();
  }
  const colon = authority.indexOf(':');
  return (colon === -1 ? authority : authority.slice(0, colon)).toLowerCase();
}

function ignore(): void {}
