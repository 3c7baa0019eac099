// What the inbound (mTLS) and external (bearer-token) listeners share: the limits, HTTP/1.1 on accepted TLS sockets
// (the lean lane first, lean-lane.ts, then node:http's server for the rest of a connection), h2 sessions by ALPN,
// and each request's run through the listener's stages (one Exchange per request over an H1Sink, LeanH1Sink or
// H2Sink, pipeline/). Each listener keeps what differs: how a connection is authenticated and which stages its
// requests go through. Also the drain and the parse-error answers.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  constants as h2constants,
  type IncomingHttpHeaders,
  performServerHandshake,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import type { SidecarConfig } from '../../config/index.js';
import { type ErrorCode, MeshauthError } from '../../errors/index.js';
import {
  expectationUnsupported,
  firstClientErrorOnly,
  MESH_PING_GRACE_MS,
  pendingResponse,
  startTimeoutSweeper,
  sweepTimeoutsWhileConnected,
  UNDICI_CODES,
  UNDICI_PARSER_ERROR_NAME,
  UnansweredResponses,
  whenSessionSilent,
} from '../../platform/index.js';
import { type Logger, type Metrics, RateLimitedLog } from '../../telemetry/index.js';
import type { VerifiedPeer } from '../../tls/index.js';
import { cutResponse } from '../cut-response.js';
import { DataPlaneTelemetry, type Direction } from '../data-plane-telemetry.js';
import { lingerAfterEarlyResponse } from '../early-response.js';
import { endSocketWithError, writeErrorH1 } from '../error-response.js';
import { type DrainState, forwarding, kResetBySidecar } from '../forward-handler.js';
import { EXTERNAL_POLICY, type ForwardPolicy, INBOUND_FORWARDER_POLICY, INBOUND_POLICY } from '../http-headers.js';
import { STRAY_ANSWER_NO_REUSE_MS } from '../http1-client.js';
import {
  type FastRequest,
  type LeanLane,
  type LeanLaneHost,
  type LeanResponse,
  leanLane,
  nodeHttpLaneHost,
} from '../lean-lane.js';
import { waitUntil } from '../listen.js';
import { Exchange, type OnRejected, runStages, type Stage } from '../pipeline/exchange.js';
import { MAX_PIPELINED_REQUESTS, methodInvalid, tooManyPipelined } from '../pipeline/rejections.js';
import { H1Sink, H2Sink, LeanH1Sink, type SinkContext } from '../pipeline/sinks.js';
import { PrematureResets } from '../premature-resets.js';
import { AppForwarder, shareKey } from './app-forwarder.js';
import { BusyRefusals } from './busy-refusals.js';
import { DEFAULT_INBOUND_LIMITS, FLOOD_LOG_INTERVAL_MS, type InboundLimits } from './limits.js';
import { PeerH2Sink } from './peer-h2-sink.js';
import { refusedForMethod } from './request-checks.js';

export interface ListenerCoreOptions {
  readonly config: SidecarConfig;
  /** Overrides of `config.inbound.limits` and the defaults (tests shorten the timeouts). */
  readonly limits: Partial<InboundLimits> | undefined;
  readonly direction: Direction;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** The verified peer of an HTTP/1.1 connection (undefined on the external listener). */
  readonly peerOf: (socket: Socket) => VerifiedPeer | undefined;
  /** The listener's bound port (the `port` a policy rule may match). */
  readonly port: () => number;
}

interface SessionState {
  inFlight: number;
  /** Streams opened, and those the peer reset before their response head (rapid reset floods). */
  readonly resets: PrematureResets;
}

const kOpenedAt = Symbol('meshauth.openedAt');
/** The exchange of an h2 stream or HTTP/1.1 response, for the listener's idle-timeout functions (no closure each). */
const kExchange = Symbol('meshauth.exchange');
/** An HTTP/1.1 response's socket, still known once node:http detached it at 'finish'. */
const kSocket = Symbol('meshauth.socket');

type InboundStream = ServerHttp2Stream & {
  [kResetBySidecar]?: boolean;
  [kOpenedAt]?: number;
  [kExchange]?: Exchange<H2Sink> | undefined;
};
/** The same for an HTTP/1.1 response, set when its request starts through the stages. */
type InboundResponse = ServerResponse & {
  [kResetBySidecar]?: boolean;
  [kExchange]?: Exchange<H1Sink>;
  /** Its socket, which node:http detaches from the response (and undici from a request body it is done with). */
  [kSocket]?: Socket;
};

export class ListenerCore {
  readonly telemetry: DataPlaneTelemetry;
  readonly limits: InboundLimits;
  /** Shared with every ForwardHandler: read when a response starts, so draining applies at once. */
  readonly drain: DrainState = {
    draining: false,
    owedAfter: (res) => this.#h1Unanswered.owedAfter(res),
  };
  /** The app hop; its `forward` is the last stage of every list. */
  readonly app: AppForwarder;
  readonly #peerOf: (socket: Socket) => VerifiedPeer | undefined;
  readonly #port: () => number;
  readonly #h1: Server;
  readonly #sinks: SinkContext;
  /** The app sent answers no request asked for: one warn line per interval (Http1Client tells of each). */
  readonly #strayLog: RateLimitedLog;
  readonly #onRejected: OnRejected;
  #stages: readonly Stage[] = [];
  readonly #streamIdleMs: number;
  readonly #sockets = new Set<TLSSocket>();
  /** h2 sessions and their streams in flight (GOAWAY only once a session is idle, see close()). */
  readonly #sessions = new Map<ServerHttp2Session, SessionState>();
  readonly #sessionOf = new WeakMap<TLSSocket, ServerHttp2Session>();
  readonly #onStreamIdle: (this: ServerHttp2Stream) => void;
  /** The mTLS inbound refuses an h2 request the app never saw with REFUSED_STREAM (peer-h2-sink.ts). */
  readonly #peerSinks: boolean;
  /**
   * HTTP/1.1 sockets whose last response was complete before its request body (lingerAfterEarlyResponse): closing,
   * never answered again (a 408 from the request timeout sweeper would be read as the answer to a next request).
   */
  readonly #answeredEarly = new WeakSet<Socket>();
  /**
   * HTTP/1.1 responses each connection still owes: their number is what MAX_PIPELINED_REQUESTS bounds, and those
   * still queued when the connection closes are ended, so their exchanges give back their places in the caller's
   * share of the app (or leave its queue) and never reach the app.
   */
  readonly #h1Unanswered = new UnansweredResponses();
  /** Connections refused for pipelining: counted and logged once each, whatever number of requests followed. */
  readonly #pipelineRefused = new WeakSet<Socket>();
  readonly #onH1Finish: (this: ServerResponse) => void;
  /** HTTP/1.1 connections still in the lean lane (not yet handed to node:http). */
  readonly #lanes = new Map<Socket, LeanLane>();
  readonly #laneHost: LeanLaneHost;

  constructor(options: ListenerCoreOptions) {
    const { config } = options;
    this.telemetry = new DataPlaneTelemetry(options.direction, options.metrics, options.logger);
    this.#peerOf = options.peerOf;
    this.#port = options.port;
    const limits: InboundLimits = Object.freeze({
      ...DEFAULT_INBOUND_LIMITS,
      // One idle limit for both protocols: an idle keep-alive HTTP/1.1 connection is an idle session.
      keepAliveTimeoutMs: config.inbound.limits.sessionIdleTimeoutMs,
      ...config.inbound.limits,
      ...options.limits,
    });
    this.limits = limits;
    // While the app holds the exchange its own timeout answers first (a 504, not a reset): an idle exchange is
    // cut only once the app timeout has had its chance.
    this.#streamIdleMs = Math.max(limits.streamIdleTimeoutMs, config.inbound.appTimeoutMs + APP_TIMEOUT_MARGIN_MS);
    const telemetry = this.telemetry;
    this.#sinks = {
      telemetry,
      drain: this.drain,
      classify: classifyAppError,
      served: new WeakSet(),
      policyFor: forwardPolicyFor(options.direction, config.inbound.trustForwardedFrom),
      forwardHooks: Object.freeze({ stallTimeoutMs: this.#streamIdleMs }),
    };
    const busy = new BusyRefusals(telemetry, options.metrics, FLOOD_LOG_INTERVAL_MS, performance.now.bind(performance));
    this.#onRejected = (exchange, error) => {
      if (error.code === 'MESHAUTH_ERR_UPSTREAM_BUSY') busy.report(shareKey(exchange), exchange, error);
      else telemetry.rejected(exchange.peerId, error, exchange.startedAt);
    };
    this.#peerSinks = options.direction === 'inbound';
    this.#strayLog = new RateLimitedLog(options.logger, options.metrics, 'app_stray_answer', FLOOD_LOG_INTERVAL_MS);
    this.app = new AppForwarder(config, limits, () => {
      options.metrics.streamsReset.inc({ direction: options.direction, reason: 'app_stray_answer' });
      this.#strayLog.warn(
        {
          direction: options.direction,
          reason: 'app_stray_answer',
          app: `${config.inbound.app.host}:${config.inbound.app.port}`,
        },
        `the app sent an answer no request asked for (it answered a request twice, or answered a request without reading its body and then read the body as a request): answers on its kept connections may have reached the wrong callers; no app connection is reused for ${STRAY_ANSWER_NO_REUSE_MS / 1000} s`,
      );
    });
    const onRejected = this.#onRejected;
    this.#onStreamIdle = function onStreamIdle(this: InboundStream): void {
      // No frame either way for the stream idle timeout. A stalled request body is answered 408 and reported as a
      // rejection; anything else is reset, never with END_STREAM, so both ends know it did not complete (H2Sink.idle).
      this[kResetBySidecar] = true;
      // A client whose session nghttp2 stopped reading (a malformed frame or header block) or that went silent would
      // hold its connection, and its places, for good: the answers of its idle streams go nowhere.
      const session = this.session;
      if (session !== undefined) whenSessionSilent(session, MESH_PING_GRACE_MS, () => session.destroy());
      const exchange = this[kExchange];
      if (exchange === undefined) {
        this.destroy(new Error('stream idle timeout'));
        telemetry.idleStream();
        return;
      }
      exchange.ended = true;
      const rejection = exchange.sink.idle();
      if (rejection === undefined) telemetry.idleStream();
      else onRejected(exchange, rejection);
    };
    const answeredEarly = this.#answeredEarly;
    const h1Unanswered = this.#h1Unanswered;
    this.#onH1Finish = function onH1Finish(this: ServerResponse): void {
      const socket = (this as InboundResponse)[kSocket];
      if (socket === undefined) return;
      h1Unanswered.answered(socket, this);
      if (!this.req.complete) lingerAfterEarlyResponse(socket, this.req, answeredEarly);
    };
    // The HTTP/1.1 server never listens: authenticated sockets are handed to it. Node's strict parser stays on
    // (insecureHTTPParser false: CL/TE conflicts, bare LF, obs-fold are 400s). requireHostHeader is off: node:http
    // would answer an HTTP/1.1 request without Host with a bare 400 of its own, never counted; checkH1Head refuses
    // it (host_missing) as it does on HTTP/1.0.
    this.#h1 = createHttpServer(
      {
        insecureHTTPParser: false,
        maxHeaderSize: limits.maxHeaderBytes,
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: limits.requestTimeoutMs,
        keepAliveTimeout: limits.keepAliveTimeoutMs,
        connectionsCheckingInterval: Math.min(1_000, limits.headersTimeoutMs),
        requireHostHeader: false,
      },
      (req: IncomingMessage, res: ServerResponse) => this.#onH1Request(req, res),
    );
    // An HTTP/1.1 exchange idle in both directions for streamIdleTimeout is handled like an idle h2 stream: a stalled
    // request body is answered 408 and reported as a rejection (H1Sink.idle), anything else is cut.
    // Node also reports an idle keep-alive connection here (no response in progress): that is an idle session.
    this.#h1.setTimeout(this.#streamIdleMs, (socket: Socket) => {
      const response = pendingResponse(socket) as InboundResponse | undefined;
      if (response === undefined && answeredEarly.has(socket)) {
        socket.destroy(); // still lingering after its last, complete response (lingerAfterEarlyResponse)
        return;
      }
      const exchange = response?.[kExchange];
      if (exchange?.ended === true) {
        // Answered 408 at the last timeout and the peer has not read the answer since: already reported.
        socket.destroy();
        return;
      }
      if (exchange !== undefined) {
        exchange.ended = true;
        const rejection = exchange.sink.idle();
        if (rejection !== undefined) {
          onRejected(exchange, rejection);
          return;
        }
      }
      let resetting = false;
      if (response !== undefined) {
        response[kResetBySidecar] = true;
        resetting = cutResponse(response);
      }
      if (!resetting) socket.destroy();
      if (response !== undefined) telemetry.idleStream();
      else telemetry.idleSession();
    });
    // Node starts the headersTimeout/requestTimeout sweeper on 'listening'; this server is fed sockets instead. It
    // runs while the server holds connections.
    sweepTimeoutsWhileConnected(this.#h1);
    startTimeoutSweeper(this.#h1);
    this.#h1.on(
      'clientError',
      firstClientErrorOnly((error: Error & { code?: string }, socket: Socket) => this.#onH1ClientError(error, socket)),
    );
    // Without a 'checkExpectation' listener node:http answers an Expect other than 100-continue with a bare 417.
    this.#h1.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
      const error = expectationUnsupported();
      writeErrorH1(res, error, undefined, true);
      this.telemetry.rejected(this.#peerOf(req.socket)?.idString ?? '', error, performance.now());
    });
    this.#laneHost = nodeHttpLaneHost({
      server: this.#h1,
      lanes: this.#lanes,
      serve: (request, res, startedAt) => this.#serveLean(request, res, startedAt),
      // A head timeout is answered as node:http's own: 408, counted and logged as the caller's request timing out.
      clientError: (error, socket) => this.#onH1ClientError(error, socket),
      // An idle keep-alive connection closed at the time its answers announced is an idle session, as node:http's
      // (whose keep-alive timeout reaches #h1.setTimeout's callback).
      idleClosed: () => telemetry.idleSession(),
    });
    // Without a 'connect' listener Node destroys a CONNECT request's socket silently: answer it, counted and logged.
    this.#h1.on('connect', (_req: IncomingMessage, socket: Socket) => {
      const error = new MeshauthError('MESHAUTH_ERR_METHOD_INVALID', 'CONNECT is not forwarded', { reason: 'method' });
      this.#answerAndClose(socket, error);
    });
  }

  /** Serves an authenticated TLS socket by ALPN: h2 streams go to `onStream`, HTTP/1.1 to the h1 server. */
  adopt(socket: TLSSocket, peer: VerifiedPeer | undefined): void {
    if (this.drain.draining) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    if (socket.alpnProtocol !== 'h2') {
      // Each HTTP/1.1 connection starts in the lean lane, which serves whole bodiless GET and HEAD requests itself and
      // hands the connection to node:http, with every byte from the first request that is not one, for good.
      this.#lanes.set(socket, leanLane(socket, this.#laneHost, this.limits));
      socket.once('close', () => this.#lanes.delete(socket));
      return;
    }
    const session = performServerHandshake(socket, {
      settings: {
        maxConcurrentStreams: this.limits.maxConcurrentStreams,
        enablePush: false,
        maxHeaderListSize: this.limits.maxHeaderBytes,
      },
      // Node resets a stream above this many fields before we see it; twice what fits in maxHeaderBytes (each
      // field counts ≥ 32 bytes) lets every list up to there reach checkH2Head and get its 431.
      maxHeaderListPairs: Math.ceil(this.limits.maxHeaderBytes / 16),
      maxSessionRejectedStreams: 100,
      maxSessionInvalidFrames: 100,
    });
    const state: SessionState = { inFlight: 0, resets: new PrematureResets() };
    this.#sessions.set(session, state);
    this.#sessionOf.set(socket, session);
    session.once('close', () => this.#sessions.delete(session));
    // node:http2 has already decided to end the session (nghttp2 saw a flood or a protocol breach): count it once.
    session.on('error', (error: Error) => {
      this.telemetry.sessionError(peer?.idString ?? '', error);
      session.destroy();
    });
    // Idle session (no stream in flight for sessionIdleTimeout): GOAWAY, then the socket closes. A listener of its own,
    // not setTimeout's callback, which node:http2 adds with `once`: a first expiry with a stream in flight would have
    // been the last, and the session never closed for idleness after it.
    session.setTimeout(this.limits.sessionIdleTimeoutMs);
    session.on('timeout', () => {
      if (state.inFlight === 0 && !session.closed) {
        session.close();
        this.telemetry.idleSession();
      }
    });
    // A session that has had no request forwarded to the app within headersTimeout is closed (GOAWAY: streams in
    // flight finish), as an HTTP/1.1 connection without a request head is: otherwise sessions that send nothing, or
    // only requests that are refused (no token), held a place of maxConnections each for the whole
    // sessionIdleTimeout, and a few thousand handshakes shut every other client out.
    const served = this.#sinks.served;
    const firstRequest = setTimeout(() => {
      if (!served.has(session) && !session.closed) {
        session.close();
        this.telemetry.idleSession();
      }
    }, this.limits.headersTimeoutMs);
    firstRequest.unref();
    session.once('close', () => clearTimeout(firstRequest));
    const onStreamIdle = this.#onStreamIdle;
    const streamIdleMs = this.#streamIdleMs;
    const drain = this.drain;
    const telemetry = this.telemetry;
    // One listener per session, not per stream. (A stream's `session` is already unset when it emits 'close'.)
    const onStreamClose = function onStreamClose(this: InboundStream): void {
      // The stream object outlives its request until node:http2's weak callback frees it: drop the exchange now.
      this[kExchange] = undefined;
      // nghttp2 reset the stream for breaking HTTP/2 after its head (a body longer or shorter than its
      // content-length, a trailer block with a pseudo-header) while a stage was still pending (a token or JWKS
      // check): no ForwardHandler exists yet to report it, and the stages stop silently on a closed sink.
      if (
        this.rstCode === h2constants.NGHTTP2_PROTOCOL_ERROR &&
        !this.headersSent &&
        this[kResetBySidecar] !== true &&
        !forwarding(this)
      ) {
        telemetry.protocolReset(peer?.idString ?? '');
      }
      if (
        !this.headersSent &&
        this[kResetBySidecar] !== true &&
        !session.closed &&
        // A session node:http2 destroys (a protocol error) is not `closed`, and closes its young streams with it:
        // counted once, for its own reason, not again as each stream's premature reset.
        !session.destroyed &&
        state.resets.closedBeforeHead(performance.now() - (this[kOpenedAt] ?? 0))
      ) {
        telemetry.prematureResets(peer?.idString ?? '', state.resets.streams, state.resets.premature);
        session.close();
      }
      if (--state.inFlight === 0 && drain.draining && !session.closed) session.close();
    };
    session.on(
      'stream',
      (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
        state.inFlight++;
        state.resets.opened();
        const openedAt = performance.now();
        (stream as InboundStream)[kOpenedAt] = openedAt;
        stream.on('error', ignore);
        stream.on('close', onStreamClose);
        stream.setTimeout(streamIdleMs, onStreamIdle);
        this.#onH2Stream(stream, headers, rawHeaders, peer, openedAt);
      },
    );
  }

  /**
   * Ends a connection this core serves without cutting what is in flight: an HTTP/2 session gets GOAWAY (its streams
   * finish), an idle HTTP/1.1 connection is closed, a busy one closes after its response. False for a socket this
   * core does not serve (a tunnel).
   */
  retire(socket: TLSSocket): boolean {
    if (!this.#sockets.has(socket)) return false;
    const session = this.#sessionOf.get(socket);
    if (session !== undefined) {
      if (!session.closed) session.close();
      return true;
    }
    const lane = this.#lanes.get(socket);
    if (lane !== undefined) {
      lane.closeIdle();
      return true;
    }
    const pending = pendingResponse(socket);
    if (pending === undefined) socket.destroy();
    // The last answer owed closes it: one closing before it would have node:http drop the answers pipelined behind.
    else (this.#h1Unanswered.lastOwed(socket) ?? pending).shouldKeepAlive = false;
    return true;
  }

  /** The stages every request of this listener goes through (set once, by the listener, after construction). */
  use(stages: readonly Stage[]): void {
    this.#stages = stages;
  }

  /** A request the lean lane parsed: through the same stages as node:http's, over a LeanH1Sink. */
  #serveLean(request: FastRequest, res: LeanResponse, startedAt: number): boolean {
    // Draining: node:http answers, with its `Connection: close` on every response.
    if (this.drain.draining) return false;
    const socket = res.socket;
    const exchange = new Exchange(
      new LeanH1Sink(request, res, this.#sinks),
      this.#peerOf(socket),
      request.method,
      request.url,
      this.#port(),
      startedAt,
    );
    runStages(this.#stages, exchange, this.#onRejected);
    return true;
  }

  #onH1Request(req: IncomingMessage, res: ServerResponse): void {
    if (this.#answeredEarly.has(req.socket)) {
      // Pipelined behind a request answered before its body ended: its answer could never be written (our side is
      // ended), so it is not started and not counted: the peer has had its answer and our FIN.
      req.socket.destroy();
      return;
    }
    // Pipelined behind an answer that closes the connection: never run, the close is its answer.
    if (this.#h1Unanswered.behindClosingAnswer(req.socket)) return;
    const startedAt = performance.now();
    const sink = new H1Sink(req, res, this.#sinks);
    const exchange = new Exchange(
      sink,
      this.#peerOf(req.socket),
      req.method as string,
      req.url as string,
      this.#port(),
      startedAt,
    );
    (res as InboundResponse)[kExchange] = exchange;
    (res as InboundResponse)[kSocket] = req.socket;
    res.on('finish', this.#onH1Finish); // after node:http's own 'finish' listener, which detaches the socket
    const inFlight = this.#h1Unanswered.add(req.socket, res);
    if (inFlight > MAX_PIPELINED_REQUESTS || this.#pipelineRefused.has(req.socket)) {
      // Its answer waits its turn behind the others (node:http keeps the order) and closes the connection; answers
      // queued that way count toward node:http's own limit of output held for a connection, past which it stops
      // reading: what one connection can pile up is bounded. Every request after a refused one is refused too,
      // however few are unanswered by then: its answer could never be written, and the app would run it unseen.
      const error = tooManyPipelined();
      exchange.ended = true;
      writeErrorH1(res, error, undefined, true);
      if (this.#pipelineRefused.has(req.socket)) return;
      this.#pipelineRefused.add(req.socket);
      this.#onRejected(exchange, error);
      return;
    }
    runStages(this.#stages, exchange, this.#onRejected);
  }

  #onH2Stream(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    rawHeaders: readonly string[],
    peer: VerifiedPeer | undefined,
    startedAt: number,
  ): void {
    const sink = this.#peerSinks
      ? new PeerH2Sink(stream, headers, rawHeaders, this.#sinks)
      : new H2Sink(stream, headers, rawHeaders, this.#sinks);
    const method = headers[':method'] as string;
    const exchange = new Exchange(
      sink,
      peer,
      method,
      (headers[':path'] as string | undefined) ?? '',
      this.#port(),
      startedAt,
    );
    (stream as InboundStream)[kExchange] = exchange;
    runStages(this.#stages, exchange, this.#onRejected);
  }

  /**
   * SIGTERM drain, after the caller stopped accepting: `Connection: close` on h1 responses,
   * GOAWAY to each h2 session once it has no stream in flight (undici 7's h2 client fails every in-flight stream
   * when it receives GOAWAY, client-h2 onHttp2SessionGoAway, so an earlier GOAWAY would break them), which then
   * closes its socket. Ends when every socket is closed or at `deadline` (ms since epoch); then closes the pool.
   */
  async close(deadline: number): Promise<void> {
    this.drain.draining = true;
    await waitUntil(deadline, () => {
      this.#h1.closeIdleConnections();
      for (const lane of this.#lanes.values()) lane.closeIdle();
      for (const [session, state] of this.#sessions) if (state.inFlight === 0 && !session.closed) session.close();
      return this.#sockets.size === 0;
    });
    for (const socket of this.#sockets) socket.destroy();
    this.#h1.closeAllConnections();
    this.#h1.close();
    await this.app.close(deadline);
    this.#strayLog.close();
    this.telemetry.close();
  }

  /** Parser-level failures (431 oversize headers, 400 framing, 408 slow headers): answer, count, log, close. */
  #onH1ClientError(error: Error & { code?: string }, socket: Socket): void {
    const code: ErrorCode =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? 'MESHAUTH_ERR_HEADERS_TOO_LARGE'
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? 'MESHAUTH_ERR_REQUEST_TIMEOUT'
          : 'MESHAUTH_ERR_BAD_REQUEST';
    const rejection = refusedForMethod(error)
      ? methodInvalid()
      : new MeshauthError(code, `HTTP parse error ${error.code ?? ''}`.trim(), {
          reason: (error.code ?? 'parse_error').toLowerCase(),
        });
    if (error.code === 'ECONNRESET') {
      socket.destroy(); // the peer went away; not a rejected request
      return;
    }
    this.#answerAndClose(socket, rejection);
  }

  /** Writes the JSON error on a socket the HTTP server gave up on, closes it, counts and logs the rejection. */
  #answerAndClose(socket: Socket, rejection: MeshauthError): void {
    const pending = pendingResponse(socket);
    if (pending === undefined && this.#answeredEarly.has(socket)) {
      // Its last response was complete before the request body ended and it is closing (the request timeout sweeper,
      // or a broken chunk of the rest of that body): nothing may follow that response, and nothing was refused.
      socket.destroy();
      return;
    }
    if (pending?.writableEnded === true) {
      // The request was already answered (a head check refused it) and that answer is still flushing: let it
      // go out, then close; it was counted when it was written.
      pending.once('finish', () => socket.destroy());
      setTimeout(() => socket.destroy(), ANSWER_GRACE_MS).unref();
      return;
    }
    if (socket.writable && pending === undefined) {
      // end() queues the answer; destroying now would drop it on a TLS socket (the bytes are still being
      // encrypted). Close once it is flushed, or after a short grace for a peer that does not read.
      endSocketWithError(socket, rejection);
      socket.once('finish', () => socket.destroy());
      setTimeout(() => socket.destroy(), ANSWER_GRACE_MS).unref();
    } else if (socket.writable && pending !== undefined && !pending.headersSent) {
      // The body broke mid-way (a bad chunk line) before the app answered: the peer gets the 400 on this request's
      // response, and the app request is aborted with the body, never completed. This 400 is the exchange's one
      // report: a stage still pending (a token check) stops there, and the app exchange's end is not a caller abort.
      const inbound = pending as InboundResponse;
      inbound[kResetBySidecar] = true;
      const exchange = inbound[kExchange];
      if (exchange !== undefined) exchange.ended = true;
      writeErrorH1(pending, rejection, undefined, true);
      pending.once('finish', () => socket.destroy());
      setTimeout(() => socket.destroy(), ANSWER_GRACE_MS).unref();
    } else {
      socket.destroy(); // mid-exchange: the app request is aborted with it, never completed
    }
    this.telemetry.rejected(this.#peerOf(socket)?.idString ?? '', rejection, performance.now());
  }
}

/** App-side failures: refused/reset → 503, timeouts → 504, bad framing → 502. */
export function classifyAppError(error: Error): MeshauthError {
  const code = (error as Error & { code?: string }).code ?? '';
  if (
    code === UNDICI_CODES.headersTimeout ||
    code === UNDICI_CODES.bodyTimeout ||
    code === UNDICI_CODES.connectTimeout
  ) {
    return new MeshauthError('MESHAUTH_ERR_UPSTREAM_TIMEOUT', 'app did not answer in time', {
      reason: 'timeout',
      cause: error,
    });
  }
  // undici 7 leaves `code` unset on most response parse errors (client-h1 createError looks llhttp's name-keyed
  // ERROR table up by number), so its HTTPParserError is recognised by name too.
  if (
    code.startsWith('HPE_') ||
    error.name === UNDICI_PARSER_ERROR_NAME ||
    code === UNDICI_CODES.contentLengthMismatch ||
    code === UNDICI_CODES.info
  ) {
    return new MeshauthError('MESHAUTH_ERR_UPSTREAM_PROTOCOL', 'app sent an invalid response', {
      reason: 'protocol',
      cause: error,
    });
  }
  if (code === 'UND_ERR_SOCKET') {
    // The connection was there and the request went out (a refused or failed connect has its own errno): the reason
    // names the close, not a connect, so an operator looks at the app's keep-alive or crashes, not at its port.
    return new MeshauthError(
      'MESHAUTH_ERR_UPSTREAM_UNAVAILABLE',
      'app unavailable: it closed the connection before its answer',
      {
        reason: 'connection_lost',
        cause: error,
      },
    );
  }
  return new MeshauthError('MESHAUTH_ERR_UPSTREAM_UNAVAILABLE', 'app unavailable', { reason: 'connect', cause: error });
}

function ignore(): void {}

/** How much later than the app timeout an idle exchange is reset (see #streamIdleMs). */
const APP_TIMEOUT_MARGIN_MS = 1_000;

/** How long an error answer written to a failed HTTP/1.1 connection may take to flush before it is destroyed. */
const ANSWER_GRACE_MS = 1_000;

/**
 * How a listener copies a caller's headers for the app: the external listener drops what its callers say about
 * proxies and clients; the inbound keeps it only from the peers trusted to forward (`inbound.trustForwardedFrom`).
 */
function forwardPolicyFor(
  direction: Direction,
  forwarders: ReadonlySet<string>,
): (peer: VerifiedPeer | undefined) => ForwardPolicy {
  if (direction === 'external') return () => EXTERNAL_POLICY;
  if (forwarders.size === 0) return () => INBOUND_POLICY;
  return (peer) => (peer !== undefined && forwarders.has(peer.idString) ? INBOUND_FORWARDER_POLICY : INBOUND_POLICY);
}
