// The outbound listener: plain HTTP/1.1 from the local app on loopback, in proxy form
// (`GET http://orders.shop/x`, HTTP_PROXY) or origin form with one Host. The host picks the route (exact name or
// pattern); the request leaves over mTLS to one of the route's endpoints (PeerSessions: DNS-resolved, balanced per
// request, one HTTP/2 session per endpoint, HTTP/1.1 connections when the peer or `outbound.http2: false` says so) with
// identity headers stripped. CONNECT opens a raw TCP tunnel (TcpTunnel, with the TCP tunnels' idle timeout and
// connection cap) only to `outbound.egress` hosts and ports, never to this machine. Connections past
// `outbound.limits.maxConnections` are closed at accept, so a local process cannot take the inbound's descriptors.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  createServer as createNetServer,
  type Server as NetServer,
  connect as netConnect,
  type Socket,
} from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { CredentialHolder } from '../../agent/credential-holder.js';
import { parseHostPort, type RouteConfig, RouteTable, type SidecarConfig } from '../../config/index.js';
import { causeChain, type ErrorCode, isMeshauthError, MeshauthError } from '../../errors/index.js';
import {
  expectationUnsupported,
  firstClientErrorOnly,
  listenOn,
  pendingResponse,
  sweepTimeoutsWhileConnected,
  UnansweredResponses,
} from '../../platform/index.js';
import type { Logger, Metrics } from '../../telemetry/index.js';
import type { ClientTlsContext } from '../../tls/index.js';
import { ConnectionRefusals, capOpenConnections } from '../connection-refusals.js';
import { cutResponse } from '../cut-response.js';
import { DataPlaneTelemetry } from '../data-plane-telemetry.js';
import { bodyStillComing, lingerAfterEarlyResponse } from '../early-response.js';
import type { Endpoint } from '../endpoints/endpoint.js';
import { endSocketWithError, writeErrorH1 } from '../error-response.js';
import { type DrainState, drainCloses, ForwardHandler, kResetBySidecar } from '../forward-handler.js';
import { copyRequestHeaders, HAS_BODY, OUTBOUND_ORIGIN_FORM, OUTBOUND_PROXY_FORM } from '../http-headers.js';
import type { Http1Client } from '../http1-client.js';
import { openFileLimit } from '../inbound/fd-budget.js';
import {
  isChunkedOnly,
  MAX_FORWARDED_REQUEST_FIELDS,
  refusedForMethod,
  tooManyFields,
  transferCodingRefused,
} from '../inbound/request-checks.js';
import { type FastRequest, type LeanLane, type LeanResponse, leanLane, nodeHttpLaneHost } from '../lean-lane.js';
import { waitUntil } from '../listen.js';
import { MAX_PIPELINED_REQUESTS, methodInvalid, tooManyPipelined } from '../pipeline/rejections.js';
import { resetSocket } from '../tcp/reset-socket.js';
import { TCP_LIMITS, type TcpLimits } from '../tcp/tcp-limits.js';
import { TcpTelemetry } from '../tcp/tcp-telemetry.js';
import { TcpTunnel } from '../tcp/tcp-tunnel.js';
import { type EgressLookupFailure, EgressLookups } from './egress-lookups.js';
import { type EgressMatcher, egressAddressRefusal, egressMatcher } from './egress-matcher.js';
import { H2Exchange, type H2ExchangeContext, outboundRetryCounters } from './h2-exchange.js';
import { outboundConnectionCap } from './outbound-connection-cap.js';
import { hookRejection, type OnOutboundRequest, type OutboundRequestContext } from './outbound-hooks.js';
import { PeerSessions } from './peer-sessions.js';
import { readRequestTarget } from './request-target.js';

export interface OutboundListenerOptions {
  readonly config: SidecarConfig;
  readonly holder: CredentialHolder;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly onOutboundRequest?: OnOutboundRequest;
  /** The workload's one client TLS context, shared with other connectors; created by PeerSessions when absent. */
  readonly clientTls?: ClientTlsContext;
  /** The TCP tunnels' limits: egress tunnels use their idle timeout and maxConnections (tests lower them). */
  readonly tcpLimits?: Partial<TcpLimits> | undefined;
  readonly now?: () => Date;
}

export const OUTBOUND_LIMITS = Object.freeze({
  maxHeaderBytes: 16 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 300_000,
  keepAliveTimeoutMs: 65_000,
});

/** An exchange answering node:http's response or the lean lane's. */
type AnyExchange = H2Exchange<ServerResponse> | H2Exchange<LeanResponse>;

export class OutboundListener {
  readonly #config: SidecarConfig;
  readonly #holder: CredentialHolder;
  readonly #logger: Logger;
  readonly #telemetry: DataPlaneTelemetry;
  /** Established egress tunnels, counted as the mesh's TCP tunnels are (direction `egress`). */
  readonly #egressTelemetry: TcpTelemetry;
  readonly #egressIdleTimeoutMs: number;
  /** Egress tunnels open or connecting at most (TcpLimits.maxConnections); past it a CONNECT gets a 503. */
  readonly #egressMaxTunnels: number;
  readonly #egressConnectTimeoutMs: number;
  /** The tunnels' name lookups: bounded in number and answered within the connect timeout. */
  readonly #egressLookups: EgressLookups;
  readonly #server: Server;
  /**
   * Accepts the app's connections: each starts in the lean lane (lean-lane.ts) and is handed to #server, node:http,
   * at its first request that does not fit it.
   */
  readonly #front: NetServer;
  readonly #leanContext: H2ExchangeContext<LeanResponse>;
  readonly #routes: RouteTable<RouteConfig>;
  readonly #sessions: PeerSessions;
  readonly #h2Context: H2ExchangeContext<ServerResponse>;
  readonly #egress: EgressMatcher;
  readonly #onOutboundRequest: OnOutboundRequest | undefined;
  readonly #drain: DrainState = {
    draining: false,
    owedAfter: (res) => this.#unanswered.owedAfter(res),
  };
  readonly #sockets = new Set<Socket>();
  /** Connections still in the lean lane (not handed to node:http). */
  readonly #lanes = new Map<Socket, LeanLane>();
  /** Responses whose request went to a peer's HTTP/1.1 client, not an h2 exchange stream. */
  readonly #http1Forwarded = new WeakSet<ServerResponse>();
  /** Connections whose last response was complete before its request body (lingerAfterEarlyResponse): closing. */
  readonly #answeredEarly = new WeakSet<Socket>();
  /**
   * The responses of each connection not yet written whole: their number is what MAX_PIPELINED_REQUESTS bounds, and
   * those still queued when the connection closes are abandoned, so the exchange on each cancels its peer stream or
   * drops its HTTP/1.1 request, as for a caller that went away during its own answer.
   */
  readonly #unanswered = new UnansweredResponses();
  /** Connections refused for pipelining: counted and logged once each; every later request on them is refused too. */
  readonly #pipelineRefused = new WeakSet<Socket>();
  readonly #onExchangeFinish: (this: ServerResponse) => void;
  /** Egress tunnels open or connecting (their upstream socket), each with its cut: a reset both ways, for the drain deadline. */
  readonly #tunnels = new Map<Socket, () => void>();
  readonly #refusals: ConnectionRefusals;
  #port = 0;

  constructor(options: OutboundListenerOptions) {
    const { config, metrics, logger } = options;
    this.#config = config;
    this.#holder = options.holder;
    this.#logger = logger;
    this.#onOutboundRequest = options.onOutboundRequest;
    this.#telemetry = new DataPlaneTelemetry('outbound', metrics, logger);
    this.#egressTelemetry = new TcpTelemetry('egress', metrics, logger);
    const tcpLimits = { ...TCP_LIMITS, ...options.tcpLimits };
    this.#egressIdleTimeoutMs = tcpLimits.idleTimeoutMs;
    this.#egressMaxTunnels = tcpLimits.maxConnections;
    this.#egressConnectTimeoutMs = tcpLimits.connectTimeoutMs;
    this.#egressLookups = new EgressLookups(tcpLimits.connectTimeoutMs);
    this.#egress = egressMatcher(config.outbound.egress);
    this.#routes = new RouteTable(config.outbound.routes.values());
    this.#sessions = new PeerSessions({
      config,
      holder: options.holder,
      metrics,
      logger,
      ...(options.clientTls === undefined ? {} : { clientTls: options.clientTls }),
      ...(options.now === undefined ? {} : { now: options.now }),
    });
    this.#h2Context = {
      telemetry: this.#telemetry,
      drain: this.#drain,
      logger,
      timeoutMs: config.outbound.timeoutMs,
      retries: outboundRetryCounters(metrics),
      // node:http sends a written head only with the first body byte: held until then, a peer stream cut before it
      // is answered 502 (or 504), not a connection closed without a status line while a 200 is counted.
      holdHead: true,
      writeHead: (res, status, headers) => {
        // SIGTERM drain: no further keep-alive. An answer ahead of the request's end (a refusal at the peer, an app
        // that answers a big upload at once) closes the connection after it: the caller learns so before its next
        // request.
        if (drainCloses(this.#drain, res) || bodyStillComing(res.req)) headers.push('connection', 'close');
        res.writeHead(status, headers);
      },
      // The exchange's `close` is this listener's draining, which closes only after the last answer owed (drainCloses).
      answer: (res, error) =>
        writeErrorH1(res, error, undefined, drainCloses(this.#drain, res) || bodyStillComing(res.req)),
      cut: cutResponse,
      forwardHttp1: (exchange, endpoint, client) => this.#forwardHttp1(exchange, endpoint, client),
    };
    const answeredEarly = this.#answeredEarly;
    const unanswered = this.#unanswered;
    this.#onExchangeFinish = function onExchangeFinish(this: ServerResponse): void {
      unanswered.answered(this.req.socket, this);
      if (!this.req.complete) lingerAfterEarlyResponse(this.req.socket, this.req, answeredEarly);
    };
    this.#server = createServer(
      {
        insecureHTTPParser: false,
        // Off: node:http would answer an HTTP/1.1 request without Host with a bare 400 of its own, never counted;
        // readRequestTarget refuses it (missing_host) as it does on HTTP/1.0.
        requireHostHeader: false,
        maxHeaderSize: OUTBOUND_LIMITS.maxHeaderBytes,
        headersTimeout: OUTBOUND_LIMITS.headersTimeoutMs,
        requestTimeout: OUTBOUND_LIMITS.requestTimeoutMs,
        keepAliveTimeout: OUTBOUND_LIMITS.keepAliveTimeoutMs,
        connectionsCheckingInterval: 1_000,
        noDelay: true,
      },
      (req, res) => this.#onRequest(req, res),
    );
    sweepTimeoutsWhileConnected(this.#server);
    // Without a 'checkExpectation' listener node:http answers an Expect other than 100-continue with a bare 417.
    this.#server.on('checkExpectation', (_req: IncomingMessage, res: ServerResponse) =>
      this.#reject(res, '', expectationUnsupported(), performance.now()),
    );
    this.#server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.#onConnect(req, socket, head),
    );
    this.#server.on(
      'clientError',
      firstClientErrorOnly((error: Error, socket: Duplex) => this.#onClientError(error, socket)),
    );
    // As the inbound's guard: past the cap Node closes the accepted connection before node:http sees it (nothing
    // written), counted and logged (rate-limited) as connection refused: max_connections.
    this.#refusals = new ConnectionRefusals('outbound', metrics, logger);
    const configured = config.outbound.limits.maxConnections;
    const maxConnections = outboundConnectionCap(
      configured,
      openFileLimit(),
      config.inbound.limits,
      config.outbound.tcp.size > 0,
    );
    if (maxConnections < configured) {
      logger.warn(
        { direction: 'outbound', configured, applied: maxConnections },
        'outbound.limits.maxConnections lowered to fit the open-file limit (ulimit -n) beside the inbound',
      );
    }
    // allowHalfOpen as node:http's own server: a connection handed over must behave as one it accepted itself.
    // meshauth_connections_open{direction="outbound"} counts what the cap counts, so the cap can be sized from it.
    const open = { direction: 'outbound' } as const;
    // One lane host for every connection; a head timeout is answered as node:http's own (408, counted and logged as
    // the app's request timing out).
    const laneHost = nodeHttpLaneHost({
      server: this.#server,
      lanes: this.#lanes,
      serve: (request, res, startedAt) => this.#serveFast(request, res, startedAt),
      clientError: (error, socket) => this.#onClientError(error, socket),
    });
    this.#front = createNetServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
      this.#sockets.add(socket);
      metrics.connectionsOpen.inc(open);
      socket.once('close', () => {
        metrics.connectionsOpen.dec(open);
        this.#sockets.delete(socket);
        this.#lanes.delete(socket);
      });
      socket.on('error', ignore);
      this.#lanes.set(socket, leanLane(socket, laneHost, OUTBOUND_LIMITS));
    });
    this.#leanContext = {
      telemetry: this.#telemetry,
      drain: this.#drain,
      logger,
      timeoutMs: config.outbound.timeoutMs,
      retries: this.#h2Context.retries,
      holdHead: true, // the lane writes a head with the first body bytes, as node:http does
      writeHead: (res, status, headers) => {
        if (this.#drain.draining) headers.push('connection', 'close');
        res.writeHead(status, headers);
      },
      answer: (res, error, close) => writeErrorH1(res, error, undefined, close),
      cut: (res) => {
        res.destroy();
      },
      // An endpoint whose peer chose HTTP/1.1: its HTTP/1.1 client, writing to the lean response as to node:http's.
      forwardHttp1: (exchange, endpoint, client) =>
        this.#forwardHttp1(exchange as unknown as H2Exchange<ServerResponse>, endpoint, client),
    };
    capOpenConnections(this.#front, maxConnections, this.#refusals);
    this.#server.on('connection', (socket: Socket) => {
      // A route tunnel comes back here on the socket that carried its CONNECT: already tracked.
      if (this.#sockets.has(socket)) return;
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      // Node drops its own error listener from a socket it hands to 'connect'; a tunnel's errors end in 'close'.
      socket.on('error', ignore);
    });
  }

  get port(): number {
    return this.#port;
  }

  async listen(): Promise<number> {
    this.#port = await listenOn(this.#front, this.#config.outbound.listen, 'outbound.listen');
    // node:http starts tracking its connections (head and request timeouts) when it listens; it never does itself.
    this.#server.emit('listening');
    return this.#port;
  }

  async close(deadline: number): Promise<void> {
    this.#drain.draining = true;
    this.#server.close();
    this.#front.close();
    await waitUntil(deadline, () => {
      this.#server.closeIdleConnections();
      for (const lane of this.#lanes.values()) lane.closeIdle();
      return this.#sockets.size === 0;
    });
    // Egress tunnels first: closeAllConnections would end their app sockets with a FIN, a cut taken for a clean end.
    for (const cut of [...this.#tunnels.values()]) cut();
    this.#server.closeAllConnections();
    for (const socket of this.#sockets) socket.destroy();
    await this.#sessions.close(deadline);
    this.#telemetry.close();
    this.#egressTelemetry.close();
    this.#refusals.close();
  }

  /**
   * A request of the lean lane, started on an exchange when it routes cleanly; false hands it to node:http, which
   * answers it as it always did (not ready, a bad target, no route, a route that cannot serve the host).
   */
  #serveFast(request: FastRequest, res: LeanResponse, startedAt: number): boolean {
    if (this.#holder.current === undefined) return false;
    const target = readRequestTarget(request.url, request.raw, true);
    if (isMeshauthError(target)) return false;
    const route = this.#routes.match(target.host);
    if (route === undefined) return false;
    const headers: string[] = [];
    const form = target.proxyForm ? OUTBOUND_PROXY_FORM : OUTBOUND_ORIGIN_FORM;
    if ((copyRequestHeaders(request.raw, form, headers) & HAS_BODY) !== 0) return false;
    if (target.proxyForm) headers.push('host', target.authority);
    const set = this.#sessions.setOrRefusal(route, target.host);
    if (isMeshauthError(set)) return false;
    const { method } = request;
    const context = this.#leanContext;
    const exchange = new H2Exchange(undefined, res, set, method, target.path, headers, false, startedAt, context);
    this.#afterHook(exchange, route, headers);
    return true;
  }

  /**
   * Starts `exchange` once the outbound hook (the passport's) is done with the request; a hook that throws or
   * rejects is the request's refusal, answered and counted by the exchange as any failure before a response head.
   * The usual case (no hook, or one that finished synchronously) allocates no promise.
   */
  #afterHook(exchange: AnyExchange, route: RouteConfig, headers: string[]): void {
    const hook = this.#onOutboundRequest;
    if (hook === undefined) {
      exchange.start();
      return;
    }
    const context: OutboundRequestContext = { route, method: exchange.method, path: exchange.path, headers };
    let pending: void | Promise<void>;
    try {
      pending = hook(context);
    } catch (error) {
      exchange.fail(hookRejection(error));
      return;
    }
    if (pending === undefined) {
      exchange.bindCredentials(context.binding);
      exchange.start();
      return;
    }
    // A binding the hook sets after an await counts too: read once it is done.
    pending.then(
      () => {
        exchange.bindCredentials(context.binding);
        exchange.start();
      },
      (error: unknown) => exchange.fail(hookRejection(error)),
    );
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    // Pipelined behind an answer that closes the connection: never run, the close is its answer.
    if (this.#unanswered.behindClosingAnswer(req.socket)) return;
    const startedAt = performance.now();
    res.on('error', ignore);
    res.on('finish', this.#onExchangeFinish); // comes once: `on` skips `once`'s per-request wrapper
    const socket = req.socket;
    if (this.#unanswered.add(socket, res) > MAX_PIPELINED_REQUESTS || this.#pipelineRefused.has(socket)) {
      this.#refusePipelined(res, socket, startedAt);
      return;
    }
    if (this.#holder.current === undefined) {
      this.#reject(
        res,
        '',
        new MeshauthError('MESHAUTH_ERR_NOT_READY', 'no SVID yet', { reason: 'not_ready' }),
        startedAt,
      );
      return;
    }
    // Before anything reads req.headers, which Node 20 stops filling after 1,000 fields (request-checks.ts).
    const tooMany = tooManyFields(req.rawHeaders.length / 2, MAX_FORWARDED_REQUEST_FIELDS);
    if (tooMany !== undefined) {
      this.#reject(res, '', tooMany, startedAt);
      return;
    }
    const target = readRequestTarget(req.url as string, req.rawHeaders, req.httpVersion !== '1.0');
    if (isMeshauthError(target)) {
      this.#reject(res, '', target, startedAt);
      return;
    }
    // As the inbound: the peer gets the body de-chunked, so a coding besides chunked would be dropped on the way.
    if (req.headers['transfer-encoding'] !== undefined && !isChunkedOnly(req.headers['transfer-encoding'])) {
      this.#reject(res, '', transferCodingRefused(), startedAt);
      return;
    }
    const { host, path, proxyForm } = target;
    const route = this.#routes.match(host);
    if (route === undefined) {
      const error = new MeshauthError('MESHAUTH_ERR_ROUTE_NOT_FOUND', `no outbound route for host ${host}`, {
        reason: 'no_route',
        detail: { host },
      });
      this.#reject(res, '', error, startedAt, { host });
      return;
    }
    const headers: string[] = [];
    const flags = copyRequestHeaders(req.rawHeaders, proxyForm ? OUTBOUND_PROXY_FORM : OUTBOUND_ORIGIN_FORM, headers);
    if (proxyForm) headers.push('host', target.authority);
    const method = req.method as string;
    const set = this.#sessions.setOrRefusal(route, host);
    if (isMeshauthError(set)) {
      // The route cannot serve this host (no namespace label for its {namespace} IDs): the app is told why.
      this.#reject(res, '', set, startedAt, { host, hint: set.message });
      return;
    }
    const exchange = new H2Exchange(
      req,
      res,
      set,
      method,
      path,
      headers,
      (flags & HAS_BODY) !== 0,
      startedAt,
      this.#h2Context,
    );
    this.#afterHook(exchange, route, headers);
  }

  /**
   * node:http parses every request a connection pipelines while the earlier answers are still due, and each would
   * start an exchange holding its peer stream (queued by nghttp2 past the peer's stream limit) until answered: one
   * connection could grow the heap without bound. Past the bound the request is answered 429 at its turn, never
   * started, and the connection closes after it; so is every request that follows on it, however few are unanswered
   * by then (their answers could never be written). Answers queued that way count toward node:http's limit of output
   * held for a connection, past which it stops reading. Counted and logged once per connection.
   */
  #refusePipelined(res: ServerResponse, socket: Socket, startedAt: number): void {
    const error = tooManyPipelined();
    writeErrorH1(res, error, undefined, true);
    if (this.#pipelineRefused.has(socket)) return;
    this.#pipelineRefused.add(socket);
    this.#telemetry.rejected('', error, startedAt);
  }

  /** The endpoint's peer speaks HTTP/1.1 (ALPN, or `outbound.http2: false`): its HTTP/1.1 client streams it. */
  #forwardHttp1(exchange: H2Exchange<ServerResponse>, endpoint: Endpoint, client: Http1Client): void {
    endpoint.inflight += 1; // the balancer's load signal, as an HTTP/2 stream counts
    this.#http1Forwarded.add(exchange.res);
    const handler = new ForwardHandler(
      exchange.res,
      false,
      endpoint.peerId,
      exchange.startedAt,
      this.#telemetry,
      classifyPeerError,
      this.#drain,
      {
        // What is left of outbound.timeout since the request arrived: a name's first answer, a connect and a retry
        // before it already spent part of it.
        headTimeoutMs: Math.max(1, Math.ceil(exchange.remainingMs())),
        // Both callers' responses (node:http's, the lean lane's) send a written head only with its first body byte:
        // held until then, a peer connection lost before it is answered 502 (504 when the peer went silent), as over
        // HTTP/2, not a connection closed without a status line while the peer's status was counted.
        holdHead: true,
        headReceived: () => endpoint.answered(),
        // The ID this endpoint's last verified connection proved (Endpoint#dial checks it before any request byte):
        // the client does not say which of its connections took the request, so two peers answering at one
        // address at once (a rolling update behind a VIP) may be told apart late; either ID is one the route accepts.
        peerId: () => endpoint.peerId,
        retry: (error) => {
          endpoint.requestFailed(error);
          return exchange.retryHttp1(error, endpoint);
        },
        settled: () => {
          endpoint.inflight -= 1;
        },
      },
    );
    client.dispatch(
      { method: exchange.method, path: exchange.path, headers: exchange.headers, body: exchange.req ?? null },
      handler,
    );
  }

  #reject(
    res: ServerResponse,
    peerId: string,
    error: MeshauthError,
    startedAt: number,
    extra?: Readonly<Record<string, string>>,
  ): void {
    // Past 1,000 fields Node 20's view of the head is cut short (header_count), its framing headers maybe among it.
    const close =
      drainCloses(this.#drain, res) ||
      error.code === 'MESHAUTH_ERR_BAD_REQUEST' ||
      error.reason === 'header_count' ||
      bodyStillComing(res.req);
    writeErrorH1(res, error, extra, close);
    this.#telemetry.rejected(peerId, error, startedAt);
  }

  /** A request head (or chunked body) node:http could not parse or did not get in time: 400/431/408, counted and logged, connection closed. */
  #onClientError(error: Error & { code?: string }, socket: Duplex): void {
    // A connection closing after an early answer is never answered again (a 408 would be read as a next answer).
    if (error.code === 'ECONNRESET' || !socket.writable || this.#answeredEarly.has(socket as Socket)) {
      socket.destroy();
      return;
    }
    // As at the inbound: a head past headersTimeout (slowloris) is the app's request timing out (408), not a parse error.
    const [code, reason]: [ErrorCode, string] =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? ['MESHAUTH_ERR_HEADERS_TOO_LARGE', 'headers_too_large']
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? ['MESHAUTH_ERR_REQUEST_TIMEOUT', 'headers_timeout']
          : ['MESHAUTH_ERR_BAD_REQUEST', 'parse_error'];
    const message =
      reason === 'headers_timeout' ? 'request from the app not received in time' : 'malformed request from the app';
    const rejection = refusedForMethod(error)
      ? methodInvalid()
      : new MeshauthError(code, message, {
          reason,
          detail: { parser: error.code ?? 'unknown' },
        });
    // A request in progress on this socket (its chunked body broke mid-way): answer on its response; the
    // exchange sees the body incomplete, resets the peer stream and counts the rejection. An HTTP/1.1 peer's
    // request is aborted with its connection (never reused after a body that broke off), and its handler sees only
    // a caller that went away: that rejection is counted here. So is one whose own request was whole (the bytes
    // that broke belong to a request pipelined behind it): its exchange sees no broken body and counts nothing.
    const inFlight = pendingResponse(socket as Socket);
    if (inFlight === undefined || this.#http1Forwarded.has(inFlight) || inFlight.req.complete) {
      this.#telemetry.rejected('', rejection, performance.now());
    }
    // That count is the exchange's one report: its handler must not also take the cut for a caller that went away.
    if (inFlight !== undefined && this.#http1Forwarded.has(inFlight)) {
      (inFlight as ServerResponse & { [kResetBySidecar]?: boolean })[kResetBySidecar] = true;
    }
    if (inFlight === undefined) {
      endSocketWithError(socket, rejection);
    } else if (!inFlight.headersSent) {
      writeErrorH1(inFlight, rejection, undefined, true);
    } else {
      socket.destroy();
    }
  }

  /**
   * `CONNECT host:port`: a TCP tunnel to an allowed egress host and port; to a mesh route's host, the requests inside
   * the tunnel are served as if sent here directly (clients such as fetch behind an HTTP proxy tunnel even to
   * `http://` URLs); anything else 403 (no TLS interception).
   */
  #onConnect(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const startedAt = performance.now();
    // A CONNECT sent behind a request still being answered: the tunnel's first bytes would overtake that response.
    const answering = pendingResponse(socket as Socket);
    if (answering !== undefined && !answering.writableFinished) {
      const error = new MeshauthError('MESHAUTH_ERR_BAD_REQUEST', 'CONNECT pipelined behind a request', {
        reason: 'connect_pipelined',
      });
      this.#telemetry.rejected('', error, startedAt);
      socket.destroy();
      return;
    }
    // The same strict host:port parser as the config (host-name characters, bracketed IPv6), never a hand split.
    const target = parseHostPort(req.url ?? '');
    if (target === undefined || target.port === 0) {
      this.#rejectTunnel(
        socket,
        new MeshauthError('MESHAUTH_ERR_BAD_REQUEST', 'bad CONNECT target', { reason: 'target_form' }),
        startedAt,
      );
      return;
    }
    const host = target.host.toLowerCase();
    const { port } = target;
    if (this.#drain.draining) {
      this.#rejectTunnel(socket, egressForbidden(host, port, 'egress_forbidden'), startedAt, { host });
      return;
    }
    if (!this.#egress(host, port)) {
      if (this.#routes.match(host) !== undefined) this.#serveRouteTunnel(socket, head, host, port, startedAt);
      else this.#rejectTunnel(socket, egressForbidden(host, port, 'egress_forbidden'), startedAt, { host });
      return;
    }
    // Resolve once, refuse any loopback answer, and connect to exactly that address (no second lookup a DNS
    // answer could change in between).
    const cancel = this.#egressLookups.lookup(host, (answer) => {
      if (socket.destroyed) return;
      if ('failure' in answer) {
        this.#rejectTunnel(socket, egressLookupFailed(host, answer.failure, answer.cause), startedAt, { host });
        return;
      }
      const { addresses } = answer;
      const refusal = egressAddressRefusal(
        host,
        addresses.map((a) => a.address),
      );
      if (refusal !== undefined) {
        const why =
          refusal === 'egress_loopback'
            ? `${host} resolves to a loopback address, and egress never reaches this machine`
            : `${host} resolves to a link-local or multicast address (where the cloud metadata service lives), which egress to a name never reaches`;
        const error = egressForbidden(host, port, refusal, why);
        this.#rejectTunnel(socket, error, startedAt, { host, hint: error.message });
        return;
      }
      this.#openTunnel(socket, head, host, (addresses[0] as { address: string }).address, port, startedAt);
    });
    // An app that leaves while its name is looked up gives its place in line up at once.
    socket.once('close', cancel);
  }

  /**
   * A tunnel to a mesh route's host carries plain HTTP/1.1 from the app: this listener parses it like any other
   * connection, so each request inside takes the route, policy and passport path of its own Host. A client that
   * would speak TLS inside (port 443) is refused: the sidecar adds the mTLS, and it does not intercept TLS.
   */
  #serveRouteTunnel(socket: Duplex, head: Buffer, host: string, port: number, startedAt: number): void {
    if (port === 443) {
      const error = new MeshauthError(
        'MESHAUTH_ERR_EGRESS_FORBIDDEN',
        `${host} is a mesh route: call it over http:// (the sidecar adds mTLS)`,
        { reason: 'route_tls', detail: { host, port } },
      );
      // The client (an HTTPS proxy user) sees the answer, rarely the sidecar's log: the fix goes in the body too.
      this.#rejectTunnel(socket, error, startedAt, { host, hint: error.message });
      return;
    }
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) socket.unshift(head);
    this.#server.emit('connection', socket);
  }

  #openTunnel(socket: Duplex, head: Buffer, host: string, address: string, port: number, startedAt: number): void {
    const app = socket as Socket;
    // Each tunnel holds two descriptors (the app's socket and the upstream's) for as long as the app keeps it, up to
    // the idle timeout: without a cap an app that leaks tunnels (or a compromised one) runs the process out of file
    // descriptors, and every listener with it. The cap is the TCP tunnels' own (TcpLimits.maxConnections, as on one
    // outbound.tcp listener), counted here, after the lookup, where the tunnel would take its sockets.
    if (this.#tunnels.size >= this.#egressMaxTunnels) {
      this.#egressTelemetry.connection('', 'limit');
      this.#rejectTunnel(socket, egressLimit(host, port, this.#egressMaxTunnels), startedAt, { host });
      return;
    }
    // allowHalfOpen: the upstream's FIN ends only the direction toward the app, as in the mesh tunnels; without it
    // Node ends our side too, and the app's next bytes fail on it with an EPIPE of Node's own.
    const upstream = netConnect({ host: address, port, allowHalfOpen: true });
    let tunnel: TcpTunnel | undefined;
    this.#tunnels.set(upstream, () => {
      if (tunnel !== undefined) tunnel.shutdown();
      else {
        resetSocket(app);
        resetSocket(upstream);
      }
    });
    // Until the upstream answers, the app's going away ends the attempt, and a failed connect ends the app's
    // connection after the 503 below. From then on the tunnel owns both sockets: a reset on one side is a reset on
    // the other, a clean half-close is passed on as one, and a tunnel silent both ways for the idle timeout is cut.
    const appLeft = () => upstream.destroy();
    app.once('close', appLeft);
    // A destination that drops SYNs would hold the app's CONNECT unanswered, and a tunnel place, until the kernel gave
    // up (about two minutes): the TCP tunnels' connect timeout ends it with the 503 below.
    const connectTimer = setTimeout(
      () => upstream.destroy(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' })),
      this.#egressConnectTimeoutMs,
    );
    upstream.once('close', () => {
      clearTimeout(connectTimer);
      this.#tunnels.delete(upstream);
      if (tunnel === undefined) app.destroy();
    });
    upstream.once('error', (cause: Error) => {
      // Once connected the tunnel carries raw bytes: an HTTP answer written into it now would reach the app as part
      // of the upstream's stream. The tunnel resets the app's connection instead.
      if (tunnel !== undefined) return;
      const error = new MeshauthError('MESHAUTH_ERR_UPSTREAM_UNAVAILABLE', `egress to ${host} failed`, {
        reason: 'connect',
        cause,
      });
      this.#rejectTunnel(app, error, startedAt, { host });
    });
    upstream.once('connect', () => {
      clearTimeout(connectTimer);
      app.off('close', appLeft);
      app.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      const counters = this.#egressTelemetry.counters;
      if (head.length > 0) {
        counters.fromApp(head.length);
        upstream.write(head);
      }
      this.#telemetry.completed('', 200, startedAt);
      this.#egressTelemetry.opened('');
      tunnel = new TcpTunnel({
        app,
        mesh: upstream,
        meshTcp: upstream,
        idleTimeoutMs: this.#egressIdleTimeoutMs,
        framed: false,
        counters,
        onClose: (end, seconds) => this.#egressTelemetry.closed(end, seconds),
      });
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

/** Peer-side failures of the HTTP/1.1 path (undici's codes): identity mismatch → 502, timeouts → 504, else 503. */
export function classifyPeerError(error: Error): MeshauthError {
  for (const e of causeChain(error)) {
    if (isMeshauthError(e)) return e;
  }
  const code = (error as Error & { code?: string }).code ?? '';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new MeshauthError('MESHAUTH_ERR_UPSTREAM_TIMEOUT', 'peer did not answer in time', {
      reason: 'timeout',
      cause: error,
    });
  }
  if (code.startsWith('HPE_') || code === 'UND_ERR_INFO' || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') {
    return new MeshauthError('MESHAUTH_ERR_UPSTREAM_PROTOCOL', 'peer sent an invalid response', {
      reason: 'response_head',
      cause: error,
    });
  }
  return new MeshauthError('MESHAUTH_ERR_PEER_UNAVAILABLE', 'peer sidecar unavailable', {
    reason: 'connect',
    cause: error,
  });
}

/** The egress tunnel cap was reached: 503 to the app (it may retry once a tunnel closes), the cap in the log line. */
function egressLimit(host: string, port: number, max: number): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_UPSTREAM_UNAVAILABLE', `egress tunnel limit reached (${max} open)`, {
    reason: 'egress_limit',
    detail: { host, port, limit: 'maxConnections', max },
  });
}

/** 503 to a CONNECT whose name gave no address: the resolver failed, took longer than the connect timeout, or was full. */
function egressLookupFailed(host: string, failure: EgressLookupFailure, cause: Error | undefined): MeshauthError {
  const why =
    failure === 'dns_timeout'
      ? 'the name lookup took longer than the connect timeout'
      : failure === 'dns_busy'
        ? 'too many egress name lookups are waiting'
        : 'the name did not resolve';
  return new MeshauthError('MESHAUTH_ERR_UPSTREAM_UNAVAILABLE', `egress to ${host} failed: ${why}`, {
    reason: failure,
    ...(cause === undefined ? {} : { cause }),
  });
}

/** 403 to a CONNECT; `why`, when given, ends the message (and the answer's hint). */
function egressForbidden(host: string, port: number, reason: string, why?: string): MeshauthError {
  const message = `egress to ${host}:${port} is not allowed`;
  return new MeshauthError('MESHAUTH_ERR_EGRESS_FORBIDDEN', why === undefined ? message : `${message}: ${why}`, {
    reason,
    detail: { host, port },
  });
}

function ignore(): void {}
