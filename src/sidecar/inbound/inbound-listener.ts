// The inbound listener: the Policy Enforcement Point (SPEC §2). Terminates mTLS (chain verified by OpenSSL,
// SPIFFE leaf rules checked once per connection before any HTTP byte is read), then serves h2 or HTTP/1.1 by
// ALPN, strips and sets identity headers, runs the authn/authz hooks and streams to the app over an undici Pool.
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
import type { CredentialHolder } from '../../agent/credential-holder.js';
import { formatHostPort, type SidecarConfig } from '../../config/index.js';
import { type ErrorCode, isMeshauthError, MeshauthError } from '../../errors/index.js';
import type { Logger, Metrics } from '../../telemetry/index.js';
import {
  mtlsServerOptions,
  peerOf,
  svidFailureReason,
  tlsClientErrorReason,
  type VerifiedPeer,
  verifyPeer,
} from '../../tls/index.js';
import { DataPlaneTelemetry } from '../data-plane-telemetry.js';
import { errorJson, writeErrorH1, writeErrorH2 } from '../error-response.js';
import { type DrainState, ForwardHandler } from '../forward-handler.js';
import { copyH2RequestHeaders, copyRequestHeaders, HAS_BODY, INBOUND_POLICY, XFCC } from '../http-headers.js';
import { listenOn, waitUntil } from '../listen.js';
import type { AuthzVerdict, EndUserOutcome, InboundHooks, InboundRequestView } from './inbound-hooks.js';

export interface InboundLimits {
  readonly maxHeaderBytes: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxConcurrentStreams: number;
}

/** HTTP limits of the inbound listener (security.md H07, H09). */
export const INBOUND_LIMITS: InboundLimits = Object.freeze({
  maxHeaderBytes: 16 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 300_000,
  keepAliveTimeoutMs: 65_000,
  maxConcurrentStreams: 256,
});

export interface InboundListenerOptions {
  readonly config: SidecarConfig;
  /** Overrides of INBOUND_LIMITS (tests shorten the timeouts). */
  readonly limits?: Partial<InboundLimits>;
  readonly holder: CredentialHolder;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly hooks?: InboundHooks;
  readonly now?: () => Date;
}

const kPeer = Symbol('meshauth.peer');
const kInFlight = Symbol('meshauth.inFlight');
type PeerSession = ServerHttp2Session & { [kPeer]?: VerifiedPeer; [kInFlight]: number };
const METHOD = /^[A-Z][A-Z0-9!#$%&'*+.^_`|~-]{0,31}$/;

export class InboundListener {
  readonly #config: SidecarConfig;
  readonly #holder: CredentialHolder;
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  readonly #hooks: InboundHooks;
  readonly #now: () => Date;
  readonly #telemetry: DataPlaneTelemetry;
  readonly #tls: TlsServer;
  readonly #h1: Server;
  readonly #app: Pool;
  readonly #sockets = new Set<TLSSocket>();
  readonly #sessions = new Set<ServerHttp2Session>();
  readonly #drain: DrainState = { draining: false };
  readonly #unsubscribe: () => void;
  readonly #limits: InboundLimits;
  #port = 0;

  constructor(options: InboundListenerOptions) {
    this.#config = options.config;
    this.#holder = options.holder;
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#hooks = options.hooks ?? {};
    this.#now = options.now ?? (() => new Date());
    this.#telemetry = new DataPlaneTelemetry('inbound', options.metrics, options.logger);
    const limits: InboundLimits = { ...INBOUND_LIMITS, ...options.limits };
    this.#limits = limits;
    const profile = { tls12: this.#config.inbound.tls12 };
    // Without credentials the server has no certificate, so every handshake fails: traffic is refused at the TLS
    // layer until the first SVID arrives (then setSecureContext below).
    this.#tls = createTlsServer(mtlsServerOptions(profile, this.#holder.current));
    this.#unsubscribe = this.#holder.subscribe((credentials) => {
      // Rotation: new handshakes use the new context; established connections keep theirs (no drops).
      this.#tls.setSecureContext(mtlsServerOptions(profile, credentials));
    });
    this.#tls.on('secureConnection', (socket: TLSSocket) => this.#onSecureConnection(socket));
    this.#tls.on('tlsClientError', (error: Error, socket: TLSSocket) => this.#onTlsClientError(error, socket));

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
      (req, res) => this.#onH1Request(req, res),
    );
    // Node starts the headersTimeout/requestTimeout sweeper on 'listening'; this server is fed sockets instead.
    this.#h1.emit('listening');
    this.#h1.on('clientError', (error: Error & { code?: string }, socket: Socket) =>
      this.#onH1ClientError(error, socket),
    );

    const app = this.#config.inbound.app;
    this.#app = new Pool(`http://${formatHostPort(app)}`, {
      headersTimeout: this.#config.inbound.appTimeoutMs,
      bodyTimeout: this.#config.inbound.appTimeoutMs,
      keepAliveTimeout: 60_000,
      connectTimeout: Math.min(this.#config.inbound.appTimeoutMs, 10_000),
    });
  }

  get port(): number {
    return this.#port;
  }

  async listen(): Promise<number> {
    this.#port = await listenOn(this.#tls, this.#config.inbound.listen);
    return this.#port;
  }

  /**
   * SIGTERM drain (security.md F10): stop accepting, GOAWAY on h2 sessions, `Connection: close` on h1 responses,
   * wait for in-flight requests until `deadline` (ms since epoch), then destroy what is left and close the pool.
   */
  async close(deadline: number): Promise<void> {
    this.#drain.draining = true;
    this.#unsubscribe();
    this.#tls.close();
    // h2: GOAWAY goes to a session once it has no stream in flight. undici 7's client fails every in-flight
    // stream when it receives GOAWAY (client-h2 onHttp2SessionGoAway), so an earlier GOAWAY would break them.
    await waitUntil(deadline, () => {
      this.#h1.closeIdleConnections();
      for (const session of this.#sessions as Set<PeerSession>) {
        if (session[kInFlight] === 0 && !session.closed) session.close();
      }
      return this.#sockets.size === 0;
    });
    for (const socket of this.#sockets) socket.destroy();
    this.#h1.closeAllConnections();
    this.#h1.close();
    const poolClosed = this.#app.close();
    await Promise.race([poolClosed, new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref())]);
    await this.#app.destroy().catch(() => undefined);
  }

  #onTlsClientError(error: Error & { code?: string }, socket: TLSSocket): void {
    const reason = tlsClientErrorReason(error, socket.authorizationError);
    this.#metrics.tlsHandshakeFailures.inc({ direction: 'inbound', reason });
    this.#logger.warn(
      { direction: 'inbound', reason, remote: socket.remoteAddress, error: error.code ?? error.message },
      'TLS handshake refused',
    );
  }

  #onSecureConnection(socket: TLSSocket): void {
    const credentials = this.#holder.current;
    let peer: VerifiedPeer;
    try {
      if (credentials === undefined) throw new MeshauthError('MESHAUTH_ERR_NOT_READY', 'no SVID yet');
      peer = verifyPeer(socket, this.#config.trustDomain, credentials.svid.id, this.#now());
    } catch (error) {
      // SPIFFE-rule failure after OpenSSL accepted the chain: drop the connection before reading any HTTP byte.
      const reason = svidFailureReason(error);
      this.#metrics.tlsHandshakeFailures.inc({ direction: 'inbound', reason });
      this.#logger.warn(
        {
          direction: 'inbound',
          reason,
          remote: socket.remoteAddress,
          code: isMeshauthError(error) ? error.code : undefined,
          error: error instanceof Error ? error.message : String(error),
        },
        'peer certificate refused',
      );
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    if (this.#drain.draining) {
      socket.destroy();
      return;
    }
    if (socket.alpnProtocol === 'h2') {
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
      (session as PeerSession)[kPeer] = peer;
      (session as PeerSession)[kInFlight] = 0;
      this.#sessions.add(session);
      session.once('close', () => this.#sessions.delete(session));
      session.on('error', () => session.destroy());
      session.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) =>
        this.#onH2Stream(stream, headers, peer),
      );
    } else {
      this.#h1.emit('connection', socket);
    }
  }

  #onH2Stream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, peer: VerifiedPeer): void {
    const startedAt = performance.now();
    stream.on('error', ignore);
    (stream.session as PeerSession)[kInFlight]++;
    stream.once('close', onStreamClose);
    const method = headers[':method'] as string;
    if (!METHOD.test(method) || method === 'CONNECT') {
      this.#rejectH2(stream, peer, 'MESHAUTH_ERR_METHOD_INVALID', 'method', startedAt);
      return;
    }
    const target = headers[':path'] as string;
    const hasBody = !stream.endAfterHeaders;
    if (this.#hooks.authorize === undefined && this.#hooks.authenticateEndUser === undefined) {
      const out: string[] = [];
      copyH2RequestHeaders(headers, out);
      out.push(XFCC, peer.xfcc);
      this.#dispatch(stream, true, peer, method, target, out, hasBody, startedAt);
      return;
    }
    const view: InboundRequestView = {
      peer,
      method,
      target,
      authority: (headers[':authority'] as string | undefined) ?? headers.host ?? '',
      headers,
      sourceIp: stream.session?.socket?.remoteAddress ?? '',
      port: this.#port,
      httpVersion: '2',
    };
    this.#withHooks(stream, true, view, startedAt, (extra, forwardTarget, dropAuthorization) => {
      const out: string[] = [];
      copyH2RequestHeaders(headers, out);
      if (dropAuthorization) removeHeader(out, 'authorization');
      out.push(XFCC, peer.xfcc, ...extra);
      this.#dispatch(stream, true, peer, method, forwardTarget ?? target, out, hasBody, startedAt);
    });
  }

  #onH1Request(req: IncomingMessage, res: ServerResponse): void {
    const startedAt = performance.now();
    const peer = peerOf(req.socket as TLSSocket);
    if (peer === undefined) {
      res.destroy(); // unreachable: only verified sockets reach this server
      return;
    }
    const method = req.method as string;
    if (method === 'CONNECT') {
      this.#rejectH1(res, peer, 'MESHAUTH_ERR_METHOD_INVALID', 'method', startedAt);
      return;
    }
    const target = req.url as string;
    if (this.#hooks.authorize === undefined && this.#hooks.authenticateEndUser === undefined) {
      const out: string[] = [];
      const flags = copyRequestHeaders(req.rawHeaders, INBOUND_POLICY, out);
      out.push(XFCC, peer.xfcc);
      this.#dispatch(res, false, peer, method, target, out, (flags & HAS_BODY) !== 0, startedAt, req);
      return;
    }
    const view: InboundRequestView = {
      peer,
      method,
      target,
      authority: req.headers.host ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      sourceIp: req.socket.remoteAddress ?? '',
      port: this.#port,
      httpVersion: '1.1',
    };
    this.#withHooks(res, false, view, startedAt, (extra, forwardTarget, dropAuthorization) => {
      const out: string[] = [];
      const flags = copyRequestHeaders(req.rawHeaders, INBOUND_POLICY, out);
      if (dropAuthorization) removeHeader(out, 'authorization');
      out.push(XFCC, peer.xfcc, ...extra);
      this.#dispatch(res, false, peer, method, forwardTarget ?? target, out, (flags & HAS_BODY) !== 0, startedAt, req);
    });
  }

  /** Runs authenticateEndUser (if any) then authorize (if any); calls `forward` with headers to add. */
  #withHooks(
    sink: ServerResponse | ServerHttp2Stream,
    h2: boolean,
    view: InboundRequestView,
    startedAt: number,
    forward: Forward,
  ): void {
    const { authenticateEndUser } = this.#hooks;
    if (authenticateEndUser === undefined) {
      this.#authorizeAndForward(sink, h2, view, undefined, forward, startedAt);
      return;
    }
    authenticateEndUser(view).then(
      (outcome) => this.#authorizeAndForward(sink, h2, view, outcome, forward, startedAt),
      (error: unknown) => {
        const rejection = isMeshauthError(error)
          ? error
          : new MeshauthError('MESHAUTH_ERR_TOKEN_INVALID', 'end-user authentication failed', { cause: error });
        this.#reject(sink, h2, view.peer, rejection, startedAt);
      },
    );
  }

  #authorizeAndForward(
    sink: ServerResponse | ServerHttp2Stream,
    h2: boolean,
    view: InboundRequestView,
    outcome: EndUserOutcome | undefined,
    forward: Forward,
    startedAt: number,
  ): void {
    if (outcome?.reject !== undefined) {
      this.#reject(sink, h2, view.peer, outcome.reject, startedAt, outcome.rejectHeaders);
      return;
    }
    const withUser: InboundRequestView =
      outcome?.user === undefined && outcome?.chain === undefined
        ? view
        : {
            ...view,
            ...(outcome.user === undefined ? {} : { user: outcome.user }),
            ...(outcome.chain === undefined ? {} : { chain: outcome.chain }),
          };
    let verdict: AuthzVerdict | undefined;
    if (this.#hooks.authorize !== undefined) {
      try {
        verdict = this.#hooks.authorize(withUser);
      } catch (error) {
        verdict = { allow: false, reason: 'authorize_error', code: errorCodeOf(error) };
      }
      const decision = verdict.decision ?? (verdict.allow ? 'allow' : 'deny');
      this.#metrics.authzDecisions.inc({ decision, rule: verdict.rule ?? '' });
      if (!verdict.allow) {
        const code = verdict.code ?? 'MESHAUTH_ERR_FORBIDDEN';
        const error = new MeshauthError(code, `denied by policy (${verdict.reason})`, {
          reason: verdict.reason,
          detail: { rule: verdict.rule, method: view.method, target: view.target.slice(0, 256) },
        });
        const body = verdict.exposeRule && verdict.rule !== undefined ? { rule: verdict.rule } : undefined;
        this.#reject(sink, h2, view.peer, error, startedAt, undefined, body);
        return;
      }
    }
    const extra: string[] = [];
    if (outcome?.headers !== undefined) {
      for (const [name, value] of Object.entries(outcome.headers)) extra.push(name.toLowerCase(), value);
    }
    forward(extra, verdict?.forwardTarget, outcome?.dropAuthorization === true);
  }

  #dispatch(
    sink: ServerResponse | ServerHttp2Stream,
    h2: boolean,
    peer: VerifiedPeer,
    method: string,
    path: string,
    headers: string[],
    hasBody: boolean,
    startedAt: number,
    req?: IncomingMessage,
  ): void {
    const handler = new ForwardHandler(
      sink,
      h2,
      peer.idString,
      startedAt,
      this.#telemetry,
      classifyAppError,
      this.#drain,
    );
    // undici destroys a body stream once it has sent it; an Http2Stream is the response too, so it is piped
    // through a PassThrough (backpressure kept by pipe) instead of being handed over directly.
    const body = hasBody ? (h2 ? (sink as ServerHttp2Stream).pipe(new PassThrough()) : req) : null;
    this.#app.dispatch({ path, method: method as 'GET', headers, body: body ?? null }, handler);
  }

  #reject(
    sink: ServerResponse | ServerHttp2Stream,
    h2: boolean,
    peer: VerifiedPeer,
    error: MeshauthError,
    startedAt: number,
    extraHeaders?: Readonly<Record<string, string>>,
    extraBody?: Readonly<Record<string, string>>,
  ): void {
    if (h2) {
      const stream = sink as ServerHttp2Stream;
      if ((extraHeaders !== undefined || extraBody !== undefined) && !stream.headersSent && !stream.destroyed) {
        const body = errorJson(error, extraBody);
        stream.respond({ ':status': error.status, 'content-type': 'application/json', ...extraHeaders });
        stream.end(body);
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
    this.#telemetry.rejected(peer.idString, error, startedAt);
  }

  #rejectH2(stream: ServerHttp2Stream, peer: VerifiedPeer, code: ErrorCode, reason: string, startedAt: number): void {
    this.#reject(stream, true, peer, new MeshauthError(code, 'malformed request', { reason }), startedAt);
  }

  #rejectH1(res: ServerResponse, peer: VerifiedPeer, code: ErrorCode, reason: string, startedAt: number): void {
    this.#reject(res, false, peer, new MeshauthError(code, 'malformed request', { reason }), startedAt);
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
    if (socket.writable && !(socket as Socket & { _httpMessage?: unknown })._httpMessage) {
      const body = errorJson(rejection);
      socket.end(
        `HTTP/1.1 ${rejection.status} ${statusText(rejection.status)}\r\ncontent-type: application/json\r\n` +
          `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy();
    if (error.code === 'ECONNRESET') return; // the peer went away; not a rejected request
    this.#telemetry.rejected(peerOf(socket as TLSSocket)?.idString ?? '', rejection, performance.now());
  }
}

/** App-side failures (security.md F04, F05): refused/reset → 503, timeouts → 504, bad framing → 502. */
export function classifyAppError(error: Error): MeshauthError {
  const code = (error as Error & { code?: string }).code ?? '';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new MeshauthError('MESHAUTH_ERR_UPSTREAM_TIMEOUT', 'app did not answer in time', {
      reason: 'timeout',
      cause: error,
    });
  }
  if (code.startsWith('HPE_') || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || code === 'UND_ERR_INFO') {
    return new MeshauthError('MESHAUTH_ERR_UPSTREAM_PROTOCOL', 'app sent an invalid response', {
      reason: 'protocol',
      cause: error,
    });
  }
  return new MeshauthError('MESHAUTH_ERR_UPSTREAM_UNAVAILABLE', 'app unavailable', { reason: 'connect', cause: error });
}

function errorCodeOf(error: unknown): ErrorCode {
  return isMeshauthError(error) ? error.code : 'MESHAUTH_ERR_FORBIDDEN';
}

function statusText(status: number): string {
  return status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request';
}

function ignore(): void {}

function onStreamClose(this: ServerHttp2Stream): void {
  const session = this.session as PeerSession | undefined;
  if (session !== undefined) session[kInFlight]--;
}

type Forward = (extra: string[], forwardTarget: string | undefined, dropAuthorization: boolean) => void;

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
