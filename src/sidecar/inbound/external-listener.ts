// The optional external listener (Issue 5): a public server-TLS listener (no client certificate) for API clients
// outside the mesh. Every request must carry a valid bearer token; passports are refused; identity headers are
// stripped and set from the verified token (origin passport + user, never XFCC: there is no client certificate);
// the same policy decides (no mTLS peer); the request streams to the app like the inbound's (ForwardHandler).
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  type IncomingHttpHeaders,
  performServerHandshake,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { PassThrough } from 'node:stream';
import { createServer as createTlsServer, type TLSSocket, type Server as TlsServer } from 'node:tls';
import { Pool } from 'undici';
import { formatHostPort, type HostPort, type SidecarConfig } from '../../config/index.js';
import { type ErrorCode, isMeshauthError, MeshauthError } from '../../errors/index.js';
import type { Logger, Metrics } from '../../telemetry/index.js';
import { protocolOptions, tlsClientErrorReason } from '../../tls/index.js';
import { DataPlaneTelemetry } from '../data-plane-telemetry.js';
import { errorJson, writeErrorH1, writeErrorH2 } from '../error-response.js';
import { type DrainState, ForwardHandler } from '../forward-handler.js';
import { copyH2RequestHeaders, copyRequestHeaders, HAS_BODY, INBOUND_POLICY } from '../http-headers.js';
import { listenOn, waitUntil } from '../listen.js';
import type { ExternalCertificate } from './external-certificate.js';
import type { ExternalHooks, ExternalRequestView } from './external-hooks.js';
import type { AuthzVerdict, EndUserOutcome } from './inbound-hooks.js';
import { classifyAppError, INBOUND_LIMITS, type InboundLimits } from './inbound-listener.js';

export interface ExternalListenerOptions {
  readonly config: SidecarConfig;
  readonly listen: HostPort;
  readonly certificate: ExternalCertificate;
  readonly hooks: ExternalHooks;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Overrides of INBOUND_LIMITS (tests shorten the timeouts). */
  readonly limits?: Partial<InboundLimits>;
}

/** The metric label of this listener (`meshauth_requests_total{direction="external",peer_id=""}`). */
export const EXTERNAL_DIRECTION = 'external';
/** External clients have no SPIFFE ID: the `peer_id` label stays empty (bounded). */
const NO_PEER = '';
const METHOD = /^[A-Z][A-Z0-9!#$%&'*+.^_`|~-]{0,31}$/;

type Sink = ServerResponse | ServerHttp2Stream;
type Forward = (extra: string[], forwardTarget: string | undefined, dropAuthorization: boolean) => void;

export class ExternalListener {
  readonly #config: SidecarConfig;
  readonly #listen: HostPort;
  readonly #hooks: ExternalHooks;
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  readonly #telemetry: DataPlaneTelemetry;
  readonly #limits: InboundLimits;
  readonly #tls: TlsServer;
  readonly #h1: Server;
  readonly #app: Pool;
  readonly #sockets = new Set<TLSSocket>();
  /** h2 sessions and their streams in flight (GOAWAY only once a session is idle, as the inbound does). */
  readonly #sessions = new Map<ServerHttp2Session, number>();
  readonly #drain: DrainState = { draining: false };
  #port = 0;

  constructor(options: ExternalListenerOptions) {
    this.#config = options.config;
    this.#listen = options.listen;
    this.#hooks = options.hooks;
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    // DataPlaneTelemetry's Direction type names only the mesh directions; the label value is just a string.
    this.#telemetry = new DataPlaneTelemetry(EXTERNAL_DIRECTION, options.metrics, options.logger);
    const limits: InboundLimits = { ...INBOUND_LIMITS, ...options.limits };
    this.#limits = limits;
    // Server TLS only: no requestCert, so no client certificate is asked for or looked at. Same protocol profile
    // as the mesh (TLS 1.3; 1.2 AEAD-only with inbound.tls12), ALPN h2 + http/1.1.
    this.#tls = createTlsServer({
      ...protocolOptions({ tls12: this.#config.inbound.tls12 }),
      cert: options.certificate.cert,
      key: options.certificate.key,
      ALPNProtocols: ['h2', 'http/1.1'],
      handshakeTimeout: 10_000,
    });
    this.#tls.on('secureConnection', (socket: TLSSocket) => this.#onSecureConnection(socket));
    this.#tls.on('tlsClientError', (error: Error & { code?: string }, socket: TLSSocket) => {
      const reason = tlsClientErrorReason(error, socket.authorizationError);
      this.#metrics.tlsHandshakeFailures.inc({ direction: EXTERNAL_DIRECTION, reason });
      this.#logger.warn(
        { direction: EXTERNAL_DIRECTION, reason, remote: socket.remoteAddress, error: error.code ?? error.message },
        'TLS handshake refused',
      );
    });
    // As on the inbound: the HTTP/1.1 server never listens, TLS sockets are handed to it; strict parser, limits.
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
      (req, res) => this.#onH1Request(req, res),
    );
    this.#h1.emit('listening'); // starts Node's headersTimeout/requestTimeout sweeper (security.md H09)
    this.#h1.on('clientError', (error: Error & { code?: string }, socket: Socket) =>
      this.#onH1ClientError(error, socket),
    );
    const appTimeout = this.#config.inbound.appTimeoutMs;
    this.#app = new Pool(`http://${formatHostPort(this.#config.inbound.app)}`, {
      headersTimeout: appTimeout,
      bodyTimeout: appTimeout,
      keepAliveTimeout: 60_000,
      connectTimeout: Math.min(appTimeout, 10_000),
    });
  }

  get port(): number {
    return this.#port;
  }

  async listen(): Promise<number> {
    this.#port = await listenOn(this.#tls, this.#listen);
    return this.#port;
  }

  /** Drain as the inbound does: stop accepting, finish in-flight requests until `deadline`, then close. */
  async close(deadline: number): Promise<void> {
    this.#drain.draining = true;
    this.#tls.close();
    await waitUntil(deadline, () => {
      this.#h1.closeIdleConnections();
      for (const [session, inFlight] of this.#sessions) if (inFlight === 0 && !session.closed) session.close();
      return this.#sockets.size === 0;
    });
    for (const socket of this.#sockets) socket.destroy();
    this.#h1.closeAllConnections();
    this.#h1.close();
    const poolClosed = this.#app.close();
    await Promise.race([poolClosed, new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref())]);
    await this.#app.destroy().catch(() => undefined);
  }

  #onSecureConnection(socket: TLSSocket): void {
    if (this.#drain.draining) {
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
        maxConcurrentStreams: this.#limits.maxConcurrentStreams,
        enablePush: false,
        maxHeaderListSize: this.#limits.maxHeaderBytes,
      },
      maxHeaderListPairs: 256,
      maxSessionRejectedStreams: 100,
      maxSessionInvalidFrames: 100,
    });
    this.#sessions.set(session, 0);
    session.once('close', () => this.#sessions.delete(session));
    session.on('error', () => session.destroy());
    session.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) =>
      this.#onH2Stream(session, stream, headers),
    );
  }

  #onH2Stream(session: ServerHttp2Session, stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    const startedAt = performance.now();
    stream.on('error', ignore);
    this.#sessions.set(session, (this.#sessions.get(session) ?? 0) + 1);
    stream.once('close', () => {
      const inFlight = this.#sessions.get(session);
      if (inFlight !== undefined) this.#sessions.set(session, inFlight - 1);
    });
    const method = headers[':method'] as string;
    if (!METHOD.test(method) || method === 'CONNECT') {
      this.#reject(stream, true, malformed('MESHAUTH_ERR_METHOD_INVALID', 'method'), startedAt);
      return;
    }
    const target = headers[':path'] as string;
    const hasBody = !stream.endAfterHeaders;
    const view: ExternalRequestView = {
      method,
      target,
      authority: (headers[':authority'] as string | undefined) ?? headers.host ?? '',
      headers,
      sourceIp: session.socket?.remoteAddress ?? '',
      port: this.#port,
      httpVersion: '2',
    };
    this.#serve(stream, true, view, startedAt, (extra, forwardTarget, dropAuthorization) => {
      const out: string[] = [];
      copyH2RequestHeaders(headers, out); // drops x-forwarded-client-cert and every x-meshauth-* (strip, then set)
      if (dropAuthorization) removeHeader(out, 'authorization');
      out.push(...extra);
      this.#dispatch(stream, true, method, forwardTarget ?? target, out, hasBody, startedAt);
    });
  }

  #onH1Request(req: IncomingMessage, res: ServerResponse): void {
    const startedAt = performance.now();
    const method = req.method as string;
    if (method === 'CONNECT') {
      this.#reject(res, false, malformed('MESHAUTH_ERR_METHOD_INVALID', 'method'), startedAt);
      return;
    }
    const target = req.url as string;
    const view: ExternalRequestView = {
      method,
      target,
      authority: req.headers.host ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      sourceIp: req.socket.remoteAddress ?? '',
      port: this.#port,
      httpVersion: '1.1',
    };
    this.#serve(res, false, view, startedAt, (extra, forwardTarget, dropAuthorization) => {
      const out: string[] = [];
      const flags = copyRequestHeaders(req.rawHeaders, INBOUND_POLICY, out); // strips identity headers, any case
      if (dropAuthorization) removeHeader(out, 'authorization');
      out.push(...extra);
      this.#dispatch(res, false, method, forwardTarget ?? target, out, (flags & HAS_BODY) !== 0, startedAt, req);
    });
  }

  /** authenticate (always) → authorize (with a policy) → forward with the headers the authenticator set. */
  #serve(sink: Sink, h2: boolean, view: ExternalRequestView, startedAt: number, forward: Forward): void {
    this.#hooks.authenticate(view).then(
      (outcome) => this.#authorizeAndForward(sink, h2, view, outcome, forward, startedAt),
      (error: unknown) => {
        const rejection = isMeshauthError(error)
          ? error
          : new MeshauthError('MESHAUTH_ERR_TOKEN_INVALID', 'client authentication failed', { cause: error });
        this.#reject(sink, h2, rejection, startedAt);
      },
    );
  }

  #authorizeAndForward(
    sink: Sink,
    h2: boolean,
    view: ExternalRequestView,
    outcome: EndUserOutcome,
    forward: Forward,
    startedAt: number,
  ): void {
    if (outcome.reject !== undefined) {
      this.#reject(sink, h2, outcome.reject, startedAt, outcome.rejectHeaders);
      return;
    }
    if (outcome.user === undefined) {
      // An authenticator that lets a request through must have verified someone: fail closed.
      this.#reject(sink, h2, new MeshauthError('MESHAUTH_ERR_TOKEN_MISSING', 'no verified client'), startedAt);
      return;
    }
    let verdict: AuthzVerdict | undefined;
    const { authorize } = this.#hooks;
    if (authorize !== undefined) {
      try {
        verdict = authorize({ ...view, user: outcome.user, chain: outcome.chain ?? [] });
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
        this.#reject(sink, h2, error, startedAt, undefined, body);
        return;
      }
    }
    const extra: string[] = [];
    if (outcome.headers !== undefined) {
      for (const [name, value] of Object.entries(outcome.headers)) extra.push(name.toLowerCase(), value);
    }
    forward(extra, verdict?.forwardTarget, outcome.dropAuthorization === true);
  }

  #dispatch(
    sink: Sink,
    h2: boolean,
    method: string,
    path: string,
    headers: string[],
    hasBody: boolean,
    startedAt: number,
    req?: IncomingMessage,
  ): void {
    const handler = new ForwardHandler(sink, h2, NO_PEER, startedAt, this.#telemetry, classifyAppError, this.#drain);
    // As on the inbound: an Http2Stream is also the response, so its body goes through a PassThrough.
    const body = hasBody ? (h2 ? (sink as ServerHttp2Stream).pipe(new PassThrough()) : req) : null;
    this.#app.dispatch({ path, method: method as 'GET', headers, body: body ?? null }, handler);
  }

  #reject(
    sink: Sink,
    h2: boolean,
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
      writeErrorH1(res, error, extraBody, this.#drain.draining);
    }
    this.#telemetry.rejected(NO_PEER, error, startedAt);
  }

  /** Parser-level failures (431, 400, 408): answer, count, log once, close. */
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
    if (socket.writable && !(socket as Socket & { _httpMessage?: unknown })._httpMessage) {
      const body = errorJson(rejection);
      socket.end(
        `HTTP/1.1 ${rejection.status} ${statusText(rejection.status)}\r\ncontent-type: application/json\r\n` +
          `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy();
    if (error.code === 'ECONNRESET') return; // the client went away; not a rejected request
    this.#telemetry.rejected(NO_PEER, rejection, performance.now());
  }
}

function malformed(code: ErrorCode, reason: string): MeshauthError {
  return new MeshauthError(code, 'malformed request', { reason });
}

function statusText(status: number): string {
  return status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request';
}

function ignore(): void {}

/** Removes every `name` entry (lower-case) from a flat `[name, value, …]` header list, in place. */
function removeHeader(flat: string[], name: string): void {
  let write = 0;
  for (let read = 0; read < flat.length; read += 2) {
    if ((flat[read] as string).toLowerCase() === name) continue;
    flat[write++] = flat[read] as string;
    flat[write++] = flat[read + 1] as string;
  }
  flat.length = write;
}
