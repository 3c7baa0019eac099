// What the inbound (mTLS) and external (bearer-token) listeners share: the HTTP limits, the HTTP/1.1 server fed
// with accepted TLS sockets, h2 sessions by ALPN, the app pool and each request's trip to it (ForwardHandler),
// rejections, the authorize step and the drain. Each listener keeps what differs: how a connection and a request
// are authenticated, and which identity headers the app gets. No per-request closures on the forwarding path.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  type IncomingHttpHeaders,
  performServerHandshake,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import { Pool } from 'undici';
import { formatHostPort, type SidecarConfig } from '../../config/index.js';
import { type ErrorCode, isMeshauthError, MeshauthError } from '../../errors/index.js';
import type { Logger, Metrics } from '../../telemetry/index.js';
import type { VerifiedPeer } from '../../tls/index.js';
import { DataPlaneTelemetry, type Direction } from '../data-plane-telemetry.js';
import { endSocketWithError, errorJson, writeErrorH1, writeErrorH2 } from '../error-response.js';
import { type DrainState, ForwardHandler, kResetBySidecar } from '../forward-handler.js';
import {
  copyH2RequestHeaders,
  copyRequestHeaders,
  HAS_BODY,
  INBOUND_POLICY,
  removeHeader,
  XFCC,
} from '../http-headers.js';
import { waitUntil } from '../listen.js';
import { pendingResponse, startTimeoutSweeper, UNDICI_CODES, UNDICI_PARSER_ERROR_NAME } from '../node-internals.js';
import type { ExternalRequestView } from './external-hooks.js';
import type { AuthzVerdict, EndUserOutcome, InboundRequestView } from './inbound-hooks.js';
import { APP_POOL_PEER_SHARE, DEFAULT_INBOUND_LIMITS, type InboundLimits } from './limits.js';
import { h2RequestBody } from './request-body.js';
import { checkH1Head, checkH2Head } from './request-checks.js';

/** HTTP and connection limits of the inbound and external listeners (security.md H07, H09; SECURITY.md). */
export const INBOUND_LIMITS: InboundLimits = DEFAULT_INBOUND_LIMITS;

/** An h2 request method must be a token (RFC 9110 §9.1); Node's HTTP/1 parser checks its own. */
const METHOD = /^[A-Z][A-Z0-9!#$%&'*+.^_`|~-]{0,31}$/;

export type Sink = ServerResponse | ServerHttp2Stream;
/** `rawHeaders`: the decoded header list as received (Node's header object drops repeated single-value names). */
export type StreamListener = (
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  rawHeaders: readonly string[],
) => void;

/** A request that went through the hooks, as `authorizeAndForward` needs it (built on the hooks path only). */
export interface HookedRequest {
  readonly sink: Sink;
  readonly h2: boolean;
  /** `peer_id` metric label ('' without an mTLS peer). */
  readonly peerId: string;
  readonly method: string;
  readonly target: string;
  readonly startedAt: number;
  /** HTTP/1.1: the request (headers and body); h2: undefined. */
  readonly req: IncomingMessage | undefined;
  /** h2: the received header object; HTTP/1.1: undefined. */
  readonly h2Headers: IncomingHttpHeaders | undefined;
  /** The x-forwarded-client-cert value to set (mTLS peers only). */
  readonly xfcc: string | undefined;
}

export function hookedRequest(
  sink: Sink,
  h2: boolean,
  peerId: string,
  method: string,
  target: string,
  startedAt: number,
  req: IncomingMessage | undefined,
  h2Headers: IncomingHttpHeaders | undefined,
  xfcc: string | undefined,
): HookedRequest {
  return { sink, h2, peerId, method, target, startedAt, req, h2Headers, xfcc };
}

/** The hooks' view: with an mTLS peer the inbound one, without (external listener) the external one. */
type ViewFor<P extends VerifiedPeer | undefined> = P extends VerifiedPeer ? InboundRequestView : ExternalRequestView;

/**
 * The hooks' view of a request, headers as received: `req` on HTTP/1.1 (its raw list too, where duplicate
 * `authorization` headers stay visible), `stream` on h2.
 */
export function requestView<P extends VerifiedPeer | undefined>(
  req: IncomingMessage | undefined,
  stream: ServerHttp2Stream | undefined,
  headers: IncomingHttpHeaders,
  method: string,
  target: string,
  port: number,
  peer: P,
): ViewFor<P> {
  const view = {
    peer,
    method,
    target,
    authority: (headers[':authority'] as string | undefined) ?? headers.host ?? '',
    headers,
    rawHeaders: req?.rawHeaders,
    sourceIp: (req === undefined ? stream?.session?.socket : req.socket)?.remoteAddress ?? '',
    port,
    httpVersion: req === undefined ? '2' : '1.1',
  };
  return view as unknown as ViewFor<P>;
}

/** What authorize sees at least (the inbound and external views both have these). */
interface DecisionView {
  readonly method: string;
  readonly target: string;
}

export interface ListenerCoreOptions {
  readonly config: SidecarConfig;
  /** Overrides of `config.inbound.limits` and the defaults (tests shorten the timeouts). */
  readonly limits: Partial<InboundLimits> | undefined;
  readonly direction: Direction;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly onH1Request: (req: IncomingMessage, res: ServerResponse) => void;
  /** The `peer_id` label for a parse error on an HTTP/1.1 connection. */
  readonly peerIdOf: (socket: Socket) => string;
}

interface SessionState {
  inFlight: number;
}

export class ListenerCore {
  readonly telemetry: DataPlaneTelemetry;
  readonly limits: InboundLimits;
  /** Shared with every ForwardHandler: read when a response starts, so draining applies at once. */
  readonly drain: DrainState = { draining: false };
  readonly #metrics: Metrics;
  readonly #peerIdOf: (socket: Socket) => string;
  readonly #h1: Server;
  readonly #app: Pool;
  readonly #sockets = new Set<TLSSocket>();
  /** h2 sessions and their streams in flight (GOAWAY only once a session is idle, see close()). */
  readonly #sessions = new Map<ServerHttp2Session, SessionState>();
  /** App requests in flight per peer ID (fair share of the app pool). */
  readonly #appInFlight = new Map<string, number>();
  readonly #maxAppPerPeer: number;
  readonly #onStreamIdle: (this: ServerHttp2Stream) => void;

  constructor(options: ListenerCoreOptions) {
    const { config } = options;
    this.telemetry = new DataPlaneTelemetry(options.direction, options.metrics, options.logger);
    this.#metrics = options.metrics;
    this.#peerIdOf = options.peerIdOf;
    const limits: InboundLimits = Object.freeze({
      ...DEFAULT_INBOUND_LIMITS,
      // One idle limit for both protocols: an idle keep-alive HTTP/1.1 connection is an idle session.
      keepAliveTimeoutMs: config.inbound.limits?.sessionIdleTimeoutMs ?? DEFAULT_INBOUND_LIMITS.keepAliveTimeoutMs,
      ...config.inbound.limits,
      ...options.limits,
    });
    this.limits = limits;
    this.#maxAppPerPeer = Math.max(1, Math.floor(limits.appConnections * APP_POOL_PEER_SHARE));
    const telemetry = this.telemetry;
    this.#onStreamIdle = function onStreamIdle(this: ServerHttp2Stream & { [kResetBySidecar]?: boolean }): void {
      this[kResetBySidecar] = true;
      // No frame either way for streamIdleTimeout: reset (never END_STREAM) so both ends know it did not complete.
      this.destroy(new Error('stream idle timeout'));
      telemetry.idleStream();
    };
    // The HTTP/1.1 server never listens: authenticated sockets are handed to it. Node's strict parser stays on
    // (insecureHTTPParser false: CL/TE conflicts, bare LF, obs-fold are 400s, security.md H01–H05).
    this.#h1 = createHttpServer(
      {
        insecureHTTPParser: false,
        maxHeaderSize: limits.maxHeaderBytes,
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: limits.requestTimeoutMs,
        keepAliveTimeout: limits.keepAliveTimeoutMs,
        connectionsCheckingInterval: Math.min(1_000, limits.headersTimeoutMs),
        requireHostHeader: true,
      },
      options.onH1Request,
    );
    // An HTTP/1.1 exchange idle in both directions for streamIdleTimeout is cut like an idle h2 stream.
    // Node also reports an idle keep-alive connection here (no response in progress): that is an idle session.
    this.#h1.setTimeout(limits.streamIdleTimeoutMs, (socket: Socket) => {
      const response = pendingResponse(socket);
      if (response !== undefined)
        (response as ServerResponse & { [kResetBySidecar]?: boolean })[kResetBySidecar] = true;
      socket.destroy();
      if (response !== undefined) telemetry.idleStream();
      else telemetry.idleSession();
    });
    // Node starts the headersTimeout/requestTimeout sweeper on 'listening'; this server is fed sockets instead.
    startTimeoutSweeper(this.#h1);
    this.#h1.on('clientError', (error: Error & { code?: string }, socket: Socket) =>
      this.#onH1ClientError(error, socket),
    );
    // Without a 'connect' listener Node destroys a CONNECT request's socket silently: answer it, counted and logged.
    this.#h1.on('connect', (_req: IncomingMessage, socket: Socket) => {
      const error = new MeshauthError('MESHAUTH_ERR_METHOD_INVALID', 'CONNECT is not forwarded', { reason: 'method' });
      this.#answerAndClose(socket, error);
    });
    const appTimeout = config.inbound.appTimeoutMs;
    this.#app = new Pool(`http://${formatHostPort(config.inbound.app)}`, {
      // Bounded: requests beyond this wait in the pool's queue instead of opening app connections without end.
      connections: limits.appConnections,
      headersTimeout: appTimeout,
      bodyTimeout: appTimeout,
      keepAliveTimeout: 60_000,
      connectTimeout: Math.min(appTimeout, 10_000),
    });
  }

  /** Serves an authenticated TLS socket by ALPN: h2 streams go to `onStream`, HTTP/1.1 to the h1 server. */
  adopt(socket: TLSSocket, onStream: StreamListener): void {
    if (this.drain.draining) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    if (socket.alpnProtocol !== 'h2') {
      this.#h1.emit('connection', socket);
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
    const state: SessionState = { inFlight: 0 };
    this.#sessions.set(session, state);
    session.once('close', () => this.#sessions.delete(session));
    session.on('error', () => session.destroy());
    // Idle session (no stream in flight for sessionIdleTimeout): GOAWAY, then the socket closes.
    session.setTimeout(this.limits.sessionIdleTimeoutMs, () => {
      if (state.inFlight === 0 && !session.closed) {
        session.close();
        this.telemetry.idleSession();
      }
    });
    const onStreamIdle = this.#onStreamIdle;
    const streamIdleMs = this.limits.streamIdleTimeoutMs;
    const drain = this.drain;
    // One listener per session, not per stream. (A stream's `session` is already unset when it emits 'close'.)
    const onStreamClose = (): void => {
      if (--state.inFlight === 0 && drain.draining && !session.closed) session.close();
    };
    session.on(
      'stream',
      (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
        state.inFlight++;
        stream.on('error', ignore);
        stream.on('close', onStreamClose);
        stream.setTimeout(streamIdleMs, onStreamIdle);
        onStream(stream, headers, rawHeaders);
      },
    );
  }

  /** Streams the request to the app; `headers` is the final list for the app (identity headers set). */
  dispatch(
    sink: Sink,
    h2: boolean,
    peerId: string,
    method: string,
    path: string,
    headers: string[],
    hasBody: boolean,
    startedAt: number,
    req: IncomingMessage | undefined,
  ): void {
    const inFlight = this.#appInFlight.get(peerId) ?? 0;
    if (inFlight >= this.#maxAppPerPeer) {
      const error = new MeshauthError('MESHAUTH_ERR_UPSTREAM_UNAVAILABLE', 'peer holds its share of the app pool', {
        reason: 'app_pool_share',
      });
      this.reject(sink, h2, peerId, error, startedAt);
      return;
    }
    this.#appInFlight.set(peerId, inFlight + 1);
    sink.once('close', () => this.#releaseApp(peerId));
    const handler = new ForwardHandler(sink, h2, peerId, startedAt, this.telemetry, classifyAppError, this.drain);
    const body = hasBody ? (h2 ? h2RequestBody(sink as ServerHttp2Stream) : (req ?? null)) : null;
    this.#app.dispatch({ path, method: method as 'GET', headers, body }, handler);
  }

  /** Waits for an authentication hook; a throw that is not a MeshauthError becomes a 401 with `message`. */
  authenticated(
    request: HookedRequest,
    pending: Promise<EndUserOutcome>,
    message: string,
    then: (outcome: EndUserOutcome) => void,
  ): void {
    pending.then(then, (error: unknown) => {
      const rejection = isMeshauthError(error)
        ? error
        : new MeshauthError('MESHAUTH_ERR_TOKEN_INVALID', message, { cause: error });
      this.reject(request.sink, request.h2, request.peerId, rejection, request.startedAt);
    });
  }

  /**
   * After authentication: answers the outcome's rejection, or runs `authorize` (if any; its decision is counted,
   * a deny answered) and forwards with the headers the authenticator set.
   */
  authorizeAndForward<V extends DecisionView>(
    request: HookedRequest,
    view: V,
    authorize: ((view: V) => AuthzVerdict) | undefined,
    outcome: EndUserOutcome | undefined,
  ): void {
    if (outcome?.reject !== undefined) {
      this.reject(request.sink, request.h2, request.peerId, outcome.reject, request.startedAt, outcome.rejectHeaders);
      return;
    }
    let verdict: AuthzVerdict | undefined;
    if (authorize !== undefined) {
      try {
        verdict = authorize(view);
      } catch (error) {
        verdict = {
          allow: false,
          reason: 'authorize_error',
          code: isMeshauthError(error) ? error.code : 'MESHAUTH_ERR_FORBIDDEN',
        };
      }
      const decision = verdict.decision ?? (verdict.allow ? 'allow' : 'deny');
      this.#metrics.authzDecisions.inc({ decision, rule: verdict.rule ?? '' });
      if (!verdict.allow) {
        const error = new MeshauthError(
          verdict.code ?? 'MESHAUTH_ERR_FORBIDDEN',
          `denied by policy (${verdict.reason})`,
          {
            reason: verdict.reason,
            detail: { rule: verdict.rule, method: view.method, target: view.target.slice(0, 256) },
          },
        );
        const body = verdict.exposeRule && verdict.rule !== undefined ? { rule: verdict.rule } : undefined;
        this.reject(request.sink, request.h2, request.peerId, error, request.startedAt, undefined, body);
        return;
      }
    }
    // Strip, then set (STYLE 4): the copy drops every incoming identity header before ours are appended.
    const out: string[] = [];
    let hasBody: boolean;
    if (request.h2) {
      copyH2RequestHeaders(request.h2Headers as IncomingHttpHeaders, out);
      hasBody = !(request.sink as ServerHttp2Stream).endAfterHeaders;
    } else {
      const flags = copyRequestHeaders((request.req as IncomingMessage).rawHeaders, INBOUND_POLICY, out);
      hasBody = (flags & HAS_BODY) !== 0;
    }
    if (outcome?.dropAuthorization === true) removeHeader(out, 'authorization');
    if (request.xfcc !== undefined) out.push(XFCC, request.xfcc);
    if (outcome?.headers !== undefined) {
      for (const [name, value] of Object.entries(outcome.headers)) out.push(name.toLowerCase(), value);
    }
    const target = verdict?.forwardTarget ?? request.target;
    this.dispatch(
      request.sink,
      request.h2,
      request.peerId,
      request.method,
      target,
      out,
      hasBody,
      request.startedAt,
      request.req,
    );
  }

  /** Answers with the sidecar's own JSON error (plus optional headers and body fields), counted and logged once. */
  reject(
    sink: Sink,
    h2: boolean,
    peerId: string,
    error: MeshauthError,
    startedAt: number,
    extraHeaders?: Readonly<Record<string, string>>,
    extraBody?: Readonly<Record<string, string>>,
  ): void {
    if (h2) {
      const stream = sink as ServerHttp2Stream;
      if ((extraHeaders !== undefined || extraBody !== undefined) && !stream.headersSent && !stream.destroyed) {
        stream.respond({ ':status': error.status, 'content-type': 'application/json', ...extraHeaders });
        stream.end(errorJson(error, extraBody));
      } else {
        writeErrorH2(stream, error);
      }
    } else {
      const res = sink as ServerResponse;
      if (extraHeaders !== undefined && !res.headersSent) {
        for (const [name, value] of Object.entries(extraHeaders)) res.setHeader(name, value);
      }
      writeErrorH1(res, error, extraBody, this.drain.draining);
    }
    this.telemetry.rejected(peerId, error, startedAt);
  }

  /** Method and head checks of an HTTP/1.x request (request-checks.ts); true when it was answered. */
  refusedH1(
    res: ServerResponse,
    req: IncomingMessage,
    peerId: string,
    method: string,
    target: string,
    startedAt: number,
  ): boolean {
    if (this.refusedMethod(res, false, peerId, method, startedAt)) return true;
    const error = checkH1Head(method, target, req.rawHeaders);
    if (error === undefined) return false;
    // Connection: close: after a malformed head the rest of the connection's bytes cannot be trusted.
    writeErrorH1(res, error, undefined, true);
    this.telemetry.rejected(peerId, error, startedAt);
    return true;
  }

  /** Method and head checks of an h2 request (request-checks.ts); true when it was answered. */
  refusedH2(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    rawHeaders: readonly string[],
    peerId: string,
    method: string,
    startedAt: number,
  ): boolean {
    if (this.refusedMethod(stream, true, peerId, method, startedAt)) return true;
    const error = checkH2Head(headers, rawHeaders, this.limits.maxHeaderBytes);
    if (error === undefined) return false;
    this.reject(stream, true, peerId, error, startedAt);
    return true;
  }

  #releaseApp(peerId: string): void {
    const left = (this.#appInFlight.get(peerId) ?? 1) - 1;
    if (left === 0) this.#appInFlight.delete(peerId);
    else this.#appInFlight.set(peerId, left);
  }

  /**
   * Answers 400 to a method the app must not see: CONNECT (no tunnels through the PEP), and on h2 anything that is
   * not a token (Node's HTTP/1 parser already refuses those). True when the request was answered.
   */
  refusedMethod(sink: Sink, h2: boolean, peerId: string, method: string, startedAt: number): boolean {
    if (method !== 'CONNECT' && (!h2 || METHOD.test(method))) return false;
    const error = new MeshauthError('MESHAUTH_ERR_METHOD_INVALID', 'malformed request', { reason: 'method' });
    this.reject(sink, h2, peerId, error, startedAt);
    return true;
  }

  /**
   * SIGTERM drain (security.md F10), after the caller stopped accepting: `Connection: close` on h1 responses,
   * GOAWAY to each h2 session once it has no stream in flight (undici 7's h2 client fails every in-flight stream
   * when it receives GOAWAY, client-h2 onHttp2SessionGoAway, so an earlier GOAWAY would break them), which then
   * closes its socket. Ends when every socket is closed or at `deadline` (ms since epoch); then closes the pool.
   */
  async close(deadline: number): Promise<void> {
    this.drain.draining = true;
    await waitUntil(deadline, () => {
      this.#h1.closeIdleConnections();
      for (const [session, state] of this.#sessions) if (state.inFlight === 0 && !session.closed) session.close();
      return this.#sockets.size === 0;
    });
    for (const socket of this.#sockets) socket.destroy();
    this.#h1.closeAllConnections();
    this.#h1.close();
    const poolClosed = this.#app.close();
    await Promise.race([poolClosed, new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref())]);
    await this.#app.destroy().catch(() => undefined);
  }

  /** Parser-level failures (431 oversize headers, 400 framing, 408 slow headers): answer, count, log, close. */
  #onH1ClientError(error: Error & { code?: string }, socket: Socket): void {
    const code: ErrorCode =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? 'MESHAUTH_ERR_HEADERS_TOO_LARGE'
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? 'MESHAUTH_ERR_REQUEST_TIMEOUT'
          : 'MESHAUTH_ERR_BAD_REQUEST';
    const rejection = new MeshauthError(code, `HTTP parse error ${error.code ?? ''}`.trim(), {
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
    } else {
      socket.destroy(); // mid-exchange: the app request is aborted with it, never completed
    }
    this.telemetry.rejected(this.#peerIdOf(socket), rejection, performance.now());
  }
}

/** App-side failures (security.md F04, F05): refused/reset → 503, timeouts → 504, bad framing → 502. */
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
  return new MeshauthError('MESHAUTH_ERR_UPSTREAM_UNAVAILABLE', 'app unavailable', { reason: 'connect', cause: error });
}

function ignore(): void {}

/** How long an error answer written to a failed HTTP/1.1 connection may take to flush before it is destroyed. */
const ANSWER_GRACE_MS = 1_000;
