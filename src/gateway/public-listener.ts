// The gateway's public listener: TLS with a normal server certificate (not the SVID), HTTP/2 and HTTP/1.1 chosen by
// ALPN (node:http2 with allowHTTP1). The certificate and key files are watched and re-read when they change (a
// cert-manager renewal or a Secret update): a pair that does not load keeps the old one in service and is logged.
// Header blocks are bounded: 431 on HTTP/1.1 from node:http; on HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE is only
// advertised (node:http2 takes larger blocks) and the edge answers 431 past it. The limits of the sidecar's
// inbound apply to this public port too (PUBLIC_LIMITS): a connection cap and a per-address share, handshake and
// request-head deadlines, an HTTP/2 session closed when it sends no request in time, HTTP/2 sessions that abuse the
// protocol (invalid frames, floods nghttp2 detects) torn down, and a session whose client resets most of its streams
// before their answer closed (the inbound's rapid-reset rule, sidecar/premature-resets.ts), and a session that does
// not acknowledge a PING once one of its streams went idle or was reset (a client gone silent, or a session nghttp2
// stopped reading) destroyed. A session this listener closes gracefully has its socket destroyed shortly after its
// last stream, not left to the idle timeout. Every connection closed by a limit is counted in
// meshauth_connections_rejected_total{direction="edge",reason} with a warn line rate-limited per reason. A request node
// refuses before the edge sees it (a malformed HTTP/1.1 head, node's own request timeout, an unmet Expect, a CONNECT)
// gets the gateway's JSON error, a count in meshauth_gateway_decisions_total{route=""} and one log line, as the edge's
// own refusals do. Every answer on this port is counted by route and status, and timed (edge-request-telemetry.ts).
import { unwatchFile, watchFile } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  createSecureServer,
  type Http2SecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
  constants as h2constants,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createSecureContext, type TLSSocket } from 'node:tls';
import { type HostPort, readSettingFile } from '../config/index.js';
import { MeshauthError } from '../errors/index.js';
import {
  addTo,
  clientSourceKey,
  clientWentAway,
  expectationUnsupported,
  firstClientErrorOnly,
  h2SessionErrorReason,
  listenOn,
  nodeRefusal,
  pendingResponse,
  UnansweredResponses,
  whenSessionSilent,
} from '../platform/index.js';
import { lingerAfterEarlyResponse } from '../sidecar/early-response.js';
import { endSocketWithError } from '../sidecar/error-response.js';
import { kResetBySidecar } from '../sidecar/forward-handler.js';
import { closeAfterEarlyResponse } from '../sidecar/inbound/request-body.js';
import { MAX_PIPELINED_REQUESTS, tooManyPipelined } from '../sidecar/pipeline/rejections.js';
import { PrematureResets } from '../sidecar/premature-resets.js';
import { type Logger, type Metrics, RefusalLog } from '../telemetry/index.js';
import { recordEdgeRefusal, refusalRule } from './edge-refusal.js';
import { EdgeRequestTelemetry } from './edge-request-telemetry.js';
import { type EdgeResponse, writeError } from './edge-responses.js';

export type PublicLimits = { readonly [K in keyof typeof PUBLIC_LIMITS]: number };

export const PUBLIC_LIMITS = Object.freeze({
  /** Open connections (TLS and plain TCP still handshaking); more are closed at accept. */
  maxConnections: 4096,
  /** Of those, at most this many from one client address (an IPv6 client by its address as given). */
  maxConnectionsPerAddress: 1024,
  /** A TLS handshake, an HTTP/1.1 request head, and an HTTP/2 session's first request must come within this. */
  handshakeTimeoutMs: 10_000,
  headersTimeoutMs: 10_000,
  /** The body of an HTTP/1.1 request, from its head on. */
  requestTimeoutMs: 300_000,
  /** Idle connections (no byte either way). */
  idleTimeoutMs: 120_000,
  maxConcurrentStreams: 100,
  /**
   * An HTTP/2 stream without a frame either way for this long has its session asked for a PING; the stream itself is
   * left alone (a slow service is the edge's upstream timeout to judge).
   */
  streamIdleCheckMs: 10_000,
  /**
   * That PING unacknowledged this long, with nothing moving on the session meanwhile (h2-liveness.ts): the session is
   * destroyed (silent_session). Far longer than the inbound's 1 s, as gRPC's keepalive timeout: a browser's ACK
   * crosses the internet behind whatever its slow link still has queued toward it (4 MiB of send buffer at 2 Mbit/s
   * is 16 s), and a download moves nothing the check can see for seconds at a time.
   */
  silentSessionGraceMs: 20_000,
});

const LIMIT_LOG_INTERVAL_MS = 10_000;
const { NGHTTP2_NO_ERROR } = h2constants;
/** How long an error answer written on a socket node:http gave up on may take to flush before the socket is closed. */
const ANSWER_GRACE_MS = 1_000;
/** When each HTTP/2 stream was opened (performance.now()), for the rapid-reset rule. */
const kOpenedAt = Symbol('meshauth.openedAt');

type PublicStream = ServerHttp2Stream & { [kOpenedAt]?: number; [kResetBySidecar]?: boolean };

export interface PublicListenerOptions {
  readonly listen: HostPort;
  readonly certFile: string;
  readonly keyFile: string;
  readonly maxHeaderBytes: number;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Overrides of PUBLIC_LIMITS (tests). */
  readonly limits?: Partial<PublicLimits>;
  /** How often the files are polled for changes (ms). */
  readonly watchIntervalMs?: number;
  readonly onRequest: (req: Http2ServerRequest, res: Http2ServerResponse) => void;
  /** Counts every answer (default: one of its own on `metrics`); the edge handler names the route on it. */
  readonly requests?: EdgeRequestTelemetry;
}

export class PublicListener {
  readonly #options: PublicListenerOptions;
  readonly #server: Http2SecureServer;
  readonly #sockets = new Set<Socket>();
  /** The head deadline of each HTTP/1.1 connection. */
  readonly #http1 = new WeakMap<TLSSocket, Http1Deadline>();
  readonly #pipelineRefused = new WeakSet<TLSSocket>();
  /**
   * The request of each HTTP/1.1 socket whose last response finished before that request's body ended (the edge
   * refused the head): while the body is incomplete, a parse error in its rest is no new request, and nothing may be
   * written after that response (the client would read it as the answer to its next request).
   */
  readonly #answeredEarly = new WeakMap<Socket, IncomingMessage>();
  readonly #onH1Finish: (this: ServerResponse) => void;
  /**
   * HTTP/1.1 responses each connection still owes; those still queued when it closes are ended, so that their
   * requests give back their place in the client's share of the route and stop on their way to the service.
   */
  readonly #unanswered = new UnansweredResponses();
  /** Open TCP connections per client address. */
  readonly #perAddress = new Map<string, number>();
  /**
   * The TLS socket under each HTTP/2 session (the session's own `socket` is a proxy that refuses destroy()): a session
   * closed gracefully ends its side and would otherwise wait for the client's FIN until the idle timeout.
   */
  readonly #socketOf = new WeakMap<ServerHttp2Session, TLSSocket>();
  /** The session node:http2 just created, until its socket's 'secureConnection' reaches this listener. */
  #newSession: ServerHttp2Session | undefined;
  /**
   * The warn line of each reason a limit closes connections for (a bounded set, named in this file), rate-limited
   * apart: a flood of one kind (rapid-reset sessions, say) does not hide the first line of another.
   */
  readonly #closedLog: RefusalLog;
  readonly #limits: PublicLimits;
  readonly #requests: EdgeRequestTelemetry;
  #material: string;
  #port = 0;
  #watching = false;

  constructor(options: PublicListenerOptions) {
    this.#options = options;
    this.#closedLog = new RefusalLog(
      options.logger,
      options.metrics,
      'gateway_connection_closed',
      'reason',
      LIMIT_LOG_INTERVAL_MS,
      { burst: 1, summary: { direction: 'edge' } },
    );
    const { cert, key } = readPair(options.certFile, options.keyFile);
    this.#material = cert + key;
    const limits: PublicLimits = { ...PUBLIC_LIMITS, ...options.limits };
    this.#limits = limits;
    const requests = options.requests ?? new EdgeRequestTelemetry(options.metrics);
    this.#requests = requests;
    const answeredEarly = this.#answeredEarly;
    const lingering = new WeakSet<Socket>();
    const unanswered = this.#unanswered;
    this.#onH1Finish = function onH1Finish(this: ServerResponse): void {
      unanswered.answered(this.req.socket, this);
      // req.complete is set by the parser itself, before a next head on the same bytes can fail to parse ('end' is
      // emitted only later).
      if (this.req.complete) return;
      answeredEarly.set(this.req.socket, this.req);
      // Its upload was dropped (an HTTP/1.1 peer answered before taking it all): nothing reads the rest, which would
      // stall the browser's upload until a timeout. Read and drop it, then close, as the sidecars' listeners do.
      if (this.req.destroyed) lingerAfterEarlyResponse(this.req.socket, this.req, lingering);
    };
    this.#server = createSecureServer(
      {
        cert,
        key,
        allowHTTP1: true,
        ALPNProtocols: ['h2', 'http/1.1'],
        minVersion: 'TLSv1.2',
        handshakeTimeout: limits.handshakeTimeoutMs,
        maxHeaderSize: options.maxHeaderBytes,
        settings: {
          maxHeaderListSize: options.maxHeaderBytes,
          enablePush: false,
          maxConcurrentStreams: limits.maxConcurrentStreams,
        },
        // Node resets a stream above this many fields before the edge sees it; twice what fits in maxHeaderBytes.
        maxHeaderListPairs: Math.ceil(options.maxHeaderBytes / 16),
        // Rapid reset (streams opened and cancelled at once to burn server work) and garbage frames: the session
        // is torn down past these.
        maxSessionRejectedStreams: 100,
        maxSessionInvalidFrames: 100,
        maxSessionMemory: 10,
      } as Parameters<typeof createSecureServer>[0],
      // Counting starts before the handler: it may answer before its first await.
      (req, res) => {
        // Pipelined behind an answer that closes the connection: never run, the close is its answer.
        if (req.httpVersionMajor !== 2 && this.#unanswered.behindClosingAnswer(req.socket)) return;
        requests.started(res);
        if (
          req.httpVersionMajor !== 2 &&
          this.#pipelinedTooFar(req.socket as TLSSocket, res as unknown as ServerResponse)
        )
          return;
        options.onRequest(req, res);
      },
    );
    // The HTTP/1.1 fallback's parser reads the server's maxHeaderSize property, which Node 20 does not set from the
    // option above: its HTTP/1.1 heads were held to Node's default 16 KiB, whatever limits.maxHeaderBytes said.
    (this.#server as { maxHeaderSize?: number }).maxHeaderSize = options.maxHeaderBytes;
    this.#server.maxConnections = limits.maxConnections;
    this.#server.setTimeout(limits.idleTimeoutMs);
    this.#server.on('connection', (socket: Socket) => this.#onConnection(socket));
    this.#server.on('drop', () => this.#closed('max_connections'));
    this.#server.on('session', (session: ServerHttp2Session) => this.#onSession(session));
    // node:http2's own 'secureConnection' listener, added by createSecureServer before this one, has just created
    // this socket's session and emitted 'session' (#onSession): that session is #newSession.
    this.#server.on('secureConnection', (socket: TLSSocket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      if (socket.alpnProtocol !== 'h2') {
        this.#http1.set(socket, new Http1Deadline(socket, this.#limits, (reason) => this.#closed(reason)));
        return;
      }
      if (this.#newSession !== undefined) this.#socketOf.set(this.#newSession, socket);
      this.#newSession = undefined;
    });
    // node:http2's HTTP/1.1 fallback keeps node:http's own head and request deadlines at their defaults (60 s and
    // 300 s from a request's first byte, checked every 30 s; createSecureServer takes no options for them), answered
    // through 'clientError' (ERR_HTTP_REQUEST_TIMEOUT). Http1Deadline enforces PUBLIC_LIMITS, usually first.
    this.#server.on(
      'request',
      (req: Http2ServerRequest | IncomingMessage, res: Http2ServerResponse | ServerResponse) => {
        if (req.httpVersionMajor === 2) {
          (res as Http2ServerResponse).stream.on('finish', onH2AnswerSent); // once per stream: no `once` wrapper
          return;
        }
        this.#http1.get(req.socket as TLSSocket)?.started(req as IncomingMessage, res as ServerResponse);
        this.#unanswered.add(req.socket, res as ServerResponse);
        (res as ServerResponse).on('finish', this.#onH1Finish); // comes once: `on` skips `once`'s per-request wrapper
      },
    );
    // Handshake failures (scanners, old clients) are routine on a public port: counted, no stack, no crash.
    this.#server.on('tlsClientError', (error: Error & { code?: string }) => {
      if (error.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') this.#closed('handshake_timeout');
    });
    // Without these listeners node:http answers a malformed HTTP/1.1 head with a bare 400 or 431 and destroys a
    // CONNECT's socket without a word, and node:http2 answers an HTTP/2 CONNECT with a bare 405: none counted or
    // logged. The gateway forwards no tunnels (the sidecar's inbound answers the same way).
    this.#server.on(
      'clientError',
      firstClientErrorOnly((error: Error & { code?: string }, socket: Socket) => this.#onClientError(error, socket)),
    );
    // Without a 'checkExpectation' listener node:http (and node:http2's compat layer) answers an Expect other than
    // 100-continue with a bare 417; the gateway meets no other expectation.
    this.#server.on(
      'checkExpectation',
      (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) =>
        this.#onExpectation(req, res),
    );
    this.#server.on('connect', (req: IncomingMessage | Http2ServerRequest, target: Socket | Http2ServerResponse) =>
      this.#onConnect(req, target),
    );
  }

  /** A request node:http could not parse: the JSON error on its socket (unless answered already), then closed. */
  #onClientError(error: Error & { code?: string }, socket: Socket): void {
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy(); // the client went away: not a refused request
      return;
    }
    const pending = pendingResponse(socket);
    if (pending === undefined && this.#answeredEarly.get(socket)?.complete === false) {
      // Its last response finished before its request body ended and this error is in the rest of that body: that
      // request was answered and counted; nothing may follow the answer.
      socket.destroy();
      return;
    }
    const close = () => socket.destroy();
    setTimeout(close, ANSWER_GRACE_MS).unref();
    if (pending?.writableEnded === true) {
      // Already answered (the edge refused the head and counted it; its body then broke the parser): let the answer
      // flush, then close.
      pending.once('finish', close);
      return;
    }
    const rejection = nodeRefusal(error.code);
    this.#refused(rejection, pending?.req.method, socket.remoteAddress, error.code);
    if (pending === undefined) {
      endSocketWithError(socket, rejection);
      this.#requests.answeredOnSocket(rejection.status);
      socket.once('finish', close);
    } else if (!pending.headersSent) {
      // The body broke before the service answered: the 400 goes on this request's response (the mesh request is
      // aborted with its body, never completed).
      writeError(pending, rejection, { connection: 'close' });
      pending.once('finish', close);
    } else {
      close(); // mid-response: cut, never framed as complete
    }
  }

  /** An `Expect` other than 100-continue (HTTP/1.1 or HTTP/2): 417 MESHAUTH_ERR_EXPECTATION_FAILED, counted, logged. */
  #onExpectation(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void {
    const rejection = expectationUnsupported();
    this.#refused(rejection, req.method, req.socket?.remoteAddress);
    this.#requests.started(res);
    if (req.httpVersionMajor === 2) {
      req.resume();
      writeError(res as unknown as EdgeResponse, rejection);
      return;
    }
    // The client may send the body it asked about anyway: this connection carries no next request.
    (res as ServerResponse).on('finish', this.#onH1Finish);
    writeError(res as unknown as EdgeResponse, rejection, { connection: 'close' });
  }

  /** CONNECT (HTTP/1.1 or HTTP/2): 400 MESHAUTH_ERR_METHOD_INVALID, counted and logged. */
  #onConnect(req: IncomingMessage | Http2ServerRequest, target: Socket | Http2ServerResponse): void {
    const rejection = new MeshauthError('MESHAUTH_ERR_METHOD_INVALID', 'CONNECT is not forwarded', {
      reason: 'method',
    });
    this.#refused(rejection, 'CONNECT', req.socket?.remoteAddress);
    if (req.httpVersionMajor === 2) {
      req.resume();
      this.#requests.started(target as Http2ServerResponse);
      writeError(target as unknown as EdgeResponse, rejection);
      return;
    }
    const socket = target as Socket;
    endSocketWithError(socket, rejection);
    this.#requests.answeredOnSocket(rejection.status);
    const close = () => socket.destroy();
    socket.once('finish', close);
    setTimeout(close, ANSWER_GRACE_MS).unref();
  }

  /** As the edge's refusals before a route is known: a deny without a route, one log line. */
  #refused(
    error: MeshauthError,
    method: string | undefined,
    sourceIp: string | undefined,
    parserCode?: string | undefined,
  ): void {
    const { metrics, logger } = this.#options;
    recordEdgeRefusal(metrics, logger, { error, rule: refusalRule(error), method, sourceIp, parserCode });
  }

  /**
   * TCP accept: at most maxConnectionsPerAddress open connections per client (an IPv6 client by its /64, which it may
   * rotate addresses inside; an IPv4 client of a dual-stack listener by its IPv4 address).
   */
  #onConnection(socket: Socket): void {
    const address = clientSourceKey(socket.remoteAddress);
    const open = (this.#perAddress.get(address) ?? 0) + 1;
    if (open > this.#limits.maxConnectionsPerAddress) {
      socket.destroy();
      this.#closed('per_address');
      return;
    }
    this.#perAddress.set(address, open);
    socket.once('close', () => addTo(this.#perAddress, address, -1));
  }

  /**
   * An HTTP/2 session: closed (GOAWAY) when it has sent no request within headersTimeout, as an HTTP/1.1 connection
   * without a request head is, or when its client resets most of its streams before their answer (PrematureResets);
   * torn down and counted when it breaks the protocol or floods (Node and nghttp2 end it), or when it leaves a PING
   * unacknowledged after a stream went idle or was reset. Once a session closed here has no stream left, its socket is
   * destroyed after ANSWER_GRACE_MS.
   */
  #onSession(session: ServerHttp2Session): void {
    this.#newSession = session;
    let requested = false;
    let open = 0;
    const resets = new PrematureResets();
    const closeSession = (reason: string): void => {
      session.close();
      this.#closed(reason);
      if (open === 0) this.#destroySocketSoon(session);
    };
    const firstRequest = setTimeout(() => {
      if (!requested && !session.closed) closeSession('idle');
    }, this.#limits.headersTimeoutMs);
    firstRequest.unref();
    session.once('stream', () => {
      requested = true;
      clearTimeout(firstRequest);
    });
    session.once('close', () => clearTimeout(firstRequest));
    session.on('error', (error: Error & { code?: string }) => {
      // A client that reset or closed its connection is not refused: the sidecar's listeners, whose sessions never
      // see their socket's errors, count nothing either. Requests still in flight are aborted toward the mesh with it.
      if (!clientWentAway(error)) this.#closed(h2SessionErrorReason(error));
      session.destroy();
    });
    session.on('frameError', () => this.#closed('frame_error'));
    session.on('goaway', () => undefined);
    // A frame or header block nghttp2 refuses without telling node:http2 (a frame over the frame size, DATA on stream
    // 0, a PING or SETTINGS of the wrong length, an undecodable header block; Node 24 reports these, Node 20 does not)
    // gets GOAWAY, and nghttp2 reads and writes nothing more on the session: its streams never end and the answers of
    // their requests go nowhere. A client gone silent with its connection open looks the same. Either held its
    // connection, its place under maxConnections and its address's share, and its requests' places in the client
    // share of their routes until the idle timeout. A stream idle for streamIdleCheckMs, or reset, asks the session
    // for a PING (whenSessionSilent); a live client acknowledges it at once.
    const checkLiveness = (): void =>
      whenSessionSilent(session, this.#limits.silentSessionGraceMs, () => {
        this.#closed('silent_session');
        session.destroy();
      });
    const streamIdleCheckMs = this.#limits.streamIdleCheckMs;
    // One listener per session, not per stream. A stream the client closed before its head and soon after opening it
    // counts toward the rapid-reset rule, unless the gateway refused it or the session was already ending (a session
    // node:http2 destroys closes its streams with it: counted once, by its own reason).
    const onStreamClose = function onStreamClose(this: PublicStream): void {
      open--;
      if (
        !this.headersSent &&
        this[kResetBySidecar] !== true &&
        !session.closed &&
        !session.destroyed &&
        resets.closedBeforeHead(performance.now() - (this[kOpenedAt] ?? 0))
      ) {
        closeSession('premature_reset');
        return;
      }
      // A reset stream (the edge's upstream timeout or a refusal, a client's cancel) may have been the last one of a
      // session nghttp2 stopped reading: no stream would be left to go idle and ask.
      if (this.rstCode !== NGHTTP2_NO_ERROR) checkLiveness();
      if (open === 0 && session.closed) destroySoon();
    };
    const destroySoon = () => this.#destroySocketSoon(session);
    session.on('stream', (stream: PublicStream) => {
      open++;
      resets.opened();
      stream[kOpenedAt] = performance.now();
      stream.once('close', onStreamClose);
      // A listener of its own, not setTimeout's callback (added with `once`): a stream whose session answered the PING
      // is checked again when it next goes idle.
      stream.setTimeout(streamIdleCheckMs);
      stream.on('timeout', checkLiveness);
    });
  }

  /**
   * A session closed gracefully has ended its side of the socket and waits for the client's: a client that never
   * closes kept its place under maxConnections and the per-address cap until the idle timeout. Destroyed after a
   * grace in which the GOAWAY and the last answers flush.
   */
  #destroySocketSoon(session: ServerHttp2Session): void {
    const socket = this.#socketOf.get(session);
    if (socket === undefined || socket.destroyed) return;
    this.#socketOf.delete(session); // once
    setTimeout(() => socket.destroy(), ANSWER_GRACE_MS).unref();
  }

  /**
   * An HTTP/1.1 request pipelined behind MAX_PIPELINED_REQUESTS others still unanswered on its connection: answered
   * 429 at its turn, the connection closed after it, never handled (see tooManyPipelined). One connection pipelining
   * thousands of GETs to a route without sign-in grew the gateway's heap without end and starved the route.
   */
  #pipelinedTooFar(socket: TLSSocket, res: ServerResponse): boolean {
    if ((this.#http1.get(socket)?.inFlight ?? 0) < MAX_PIPELINED_REQUESTS) return false;
    writeError(res, tooManyPipelined(), { connection: 'close' });
    // Counted and logged once per connection, whatever number of requests followed.
    if (!this.#pipelineRefused.has(socket)) {
      this.#pipelineRefused.add(socket);
      this.#closed('pipelined');
    }
    return true;
  }

  #closed(reason: string): void {
    this.#options.metrics.connectionsRejected.inc({ direction: 'edge', reason });
    this.#closedLog.warn(reason, { direction: 'edge' }, `public connection closed: ${reason}`);
  }

  get port(): number {
    return this.#port;
  }

  async listen(): Promise<number> {
    this.#port = await listenOn(this.#server, this.#options.listen, 'listen');
    this.#watch();
    return this.#port;
  }

  /** Re-reads the certificate and key now; true when a new pair was installed. */
  reload(): boolean {
    const { certFile, keyFile, logger } = this.#options;
    let pair: { cert: string; key: string };
    try {
      pair = readPair(certFile, keyFile);
    } catch (error) {
      logger.warn(
        { event: 'certificate_reload', result: 'failed', err: (error as Error).message },
        'kept the old certificate',
      );
      return false;
    }
    if (pair.cert + pair.key === this.#material) return false;
    this.#server.setSecureContext({ cert: pair.cert, key: pair.key, minVersion: 'TLSv1.2' });
    this.#material = pair.cert + pair.key;
    logger.info({ event: 'certificate_reload', result: 'ok', cert: certFile }, 'server certificate reloaded');
    return true;
  }

  async close(deadline: number): Promise<void> {
    this.#unwatch();
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      const left = Math.max(0, deadline - Date.now());
      setTimeout(() => {
        for (const socket of this.#sockets) socket.destroy();
        resolve();
      }, left).unref();
    });
  }

  #watch(): void {
    const interval = this.#options.watchIntervalMs ?? 2_000;
    // Polling, not fs.watch: Kubernetes updates mounted Secrets by swapping a symlink, which inotify on the file misses.
    const onChange = () => this.reload();
    watchFile(this.#options.certFile, { interval, persistent: false }, onChange);
    watchFile(this.#options.keyFile, { interval, persistent: false }, onChange);
    this.#watching = true;
  }

  #unwatch(): void {
    if (!this.#watching) return;
    unwatchFile(this.#options.certFile);
    unwatchFile(this.#options.keyFile);
    this.#watching = false;
  }
}

/**
 * An HTTP/1.1 connection's next request head must arrive within headersTimeout of the connection or of the end of its
 * last response, the rest of a request (its body) within requestTimeout. Past the first with part of a head received: 408 and close
 * (counted); with nothing received, the idle keep-alive connection just closes. Past the second: closed.
 */
class Http1Deadline {
  readonly #socket: TLSSocket;
  readonly #limits: PublicLimits;
  readonly #onTimeout: (reason: 'headers_timeout' | 'request_timeout') => void;
  #timer: NodeJS.Timeout | undefined;
  /** Requests whose response is not over yet. */
  #inFlight = 0;
  /** Requests whose body has not all arrived yet. */
  #receiving = 0;
  /** socket.bytesRead when the head deadline was armed: more by expiry means a head was on its way. */
  #bytesAtArm = 0;

  constructor(
    socket: TLSSocket,
    limits: PublicLimits,
    onTimeout: (reason: 'headers_timeout' | 'request_timeout') => void,
  ) {
    this.#socket = socket;
    this.#limits = limits;
    this.#onTimeout = onTimeout;
    this.#arm(this.#limits.headersTimeoutMs);
    socket.once('close', () => clearTimeout(this.#timer));
  }

  /** Requests of this connection whose response is not over yet (those started, this one not yet). */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** A request head arrived: its body must arrive within requestTimeout (the response may take as long as it needs). */
  started(req: IncomingMessage, res: ServerResponse): void {
    this.#inFlight += 1;
    this.#receiving += 1;
    this.#arm(this.#limits.requestTimeoutMs);
    let received = false;
    const done = () => {
      if (received) return;
      received = true;
      this.#receiving -= 1;
      // Bodies all in: responses may take as long as they need (pipelined ones included).
      if (this.#receiving === 0 && this.#inFlight > 0) clearTimeout(this.#timer);
    };
    req.once('end', done);
    res.once('close', () => {
      done();
      this.#inFlight -= 1;
      if (this.#inFlight === 0) this.#arm(this.#limits.headersTimeoutMs);
    });
  }

  #arm(ms: number): void {
    clearTimeout(this.#timer);
    if (this.#socket.destroyed) return;
    this.#bytesAtArm = this.#socket.bytesRead;
    this.#timer = setTimeout(() => this.#expired(), ms);
    this.#timer.unref();
  }

  #expired(): void {
    const socket = this.#socket;
    if (socket.destroyed) return;
    if (this.#inFlight > 0) {
      this.#onTimeout('request_timeout');
      socket.destroy();
      return;
    }
    if (socket.bytesRead > this.#bytesAtArm && socket.writable) {
      this.#onTimeout('headers_timeout');
      socket.end('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    } else {
      socket.end(); // idle keep-alive: nothing was asked, nothing to answer
    }
    setTimeout(() => socket.destroy(), 1_000).unref();
  }
}

/** Reads and checks a certificate/key pair (a mismatched pair throws here, not at the next handshake). */
function readPair(certFile: string, keyFile: string): { cert: string; key: string } {
  const cert = readTlsFile(certFile, 'tls.cert');
  const key = readTlsFile(keyFile, 'tls.key');
  try {
    createSecureContext({ cert, key });
  } catch (cause) {
    throw new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', `tls: ${certFile} and ${keyFile} are not a usable pair`, {
      reason: 'tls_pair',
      cause,
    });
  }
  return { cert, key };
}

/** The key that names the file is in the message (the gateway puts its config file in front at start). */
function readTlsFile(file: string, key: string): string {
  return readSettingFile(file, {
    setting: key,
    what: key === 'tls.key' ? 'key file' : 'certificate file',
    reason: 'tls_files',
  });
}

/**
 * An HTTP/2 answer sent (END_STREAM written) before the browser's upload ended: once it is flushed, the stream is
 * closed with RST_STREAM(NO_ERROR), asking the browser to stop sending, as the sidecars close theirs, instead of
 * staying half-open until the session's idle timeout. A complete upload leaves it alone.
 */
function onH2AnswerSent(this: ServerHttp2Stream): void {
  closeAfterEarlyResponse(this);
}
