// The Sinks (pipeline/exchange.ts): HTTP/1.1 over node:http's request and response (H1Sink) or over the lean lane's
// LeanResponse (LeanH1Sink), and h2 over a server stream (H2Sink). Each knows its protocol's header copy, body
// hand-off, error answer and forward handler, so stages never branch on `h2`.
import { type IncomingHttpHeaders as H1Headers, IncomingMessage, type ServerResponse } from 'node:http';
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { isForwardedMethod } from '../../authz/index.js';
import type { MeshauthError } from '../../errors/index.js';
import { clientAddress } from '../../platform/index.js';
import type { VerifiedPeer } from '../../tls/index.js';
import type { DataPlaneTelemetry } from '../data-plane-telemetry.js';
import { bodyStillComing } from '../early-response.js';
import { writeErrorH1, writeErrorH2 } from '../error-response.js';
import {
  type DrainState,
  drainCloses,
  type ErrorClassifier,
  ForwardHandler,
  type ForwardHooks,
} from '../forward-handler.js';
import { copyH2RequestHeaders, copyRequestHeaders, type ForwardPolicy, HAS_BODY, hostHeader } from '../http-headers.js';
import { h2RequestBody } from '../inbound/request-body.js';
import { checkH1Head, checkH2Head } from '../inbound/request-checks.js';
import type { FastRequest, LeanResponse } from '../lean-lane.js';
import type { Sink } from './exchange.js';
import { methodInvalid, requestBodyStalled } from './rejections.js';

/** Shared by every sink of one listener. */
export interface SinkContext {
  readonly telemetry: DataPlaneTelemetry;
  readonly drain: DrainState;
  readonly classify: ErrorClassifier;
  /**
   * HTTP/1.1 sockets and HTTP/2 sessions that have had a request forwarded to the app. Until then a connection has
   * earned nothing: a refusal closes an HTTP/1.1 one, and an HTTP/2 session is closed at its first-request deadline
   * (listener-core.ts), so requests that are only ever refused (no token) cannot keep a connection's place.
   */
  readonly served: WeakSet<object>;
  /**
   * How received headers are copied for the app, by caller: the external listener drops forwarding headers, the
   * inbound drops them unless the peer is trusted to forward (`inbound.trustForwardedFrom`).
   */
  policyFor(peer: VerifiedPeer | undefined): ForwardPolicy;
  /** The same for every exchange of the listener: how long a response write may wait for the caller to read. */
  readonly forwardHooks: ForwardHooks;
}

/** What an HTTP/1.1 answer goes out on: node:http's ServerResponse, or the lean lane's LeanResponse. */
type H1Response = ServerResponse | LeanResponse;

/**
 * What both HTTP/1.1 sinks do alike: the head checks and copy over the received lines, the refusal's answer and when
 * it closes the connection, the forward handler. They differ in where the request comes from: node:http's
 * IncomingMessage (any request), or a whole bodiless GET or HEAD the lean lane parsed itself.
 */
abstract class H1SinkBase implements Sink {
  readonly h2 = false;
  readonly rawHeaders: readonly string[];
  protected readonly res: H1Response;
  /** The connection (node:http detaches it from a response once answered, and the app client from a body). */
  readonly #socket: Socket;
  readonly #context: SinkContext;
  /** The app exchange's handler, once the request was dispatched to the app. */
  protected handler: ForwardHandler | undefined;

  constructor(rawHeaders: readonly string[], socket: Socket, res: H1Response, context: SinkContext) {
    this.rawHeaders = rawHeaders;
    this.#socket = socket;
    this.res = res;
    this.#context = context;
  }

  abstract get headers(): IncomingHttpHeaders;

  abstract body(): Readable | null;

  /** The request's body is still arriving: a refusal now closes the connection behind it. */
  protected abstract bodyStillComing(): boolean;

  /** The first Host line, as node:http's `headers.host` (read from the raw lines: no header object is built for it). */
  get authority(): string {
    return hostHeader(this.rawHeaders) ?? '';
  }

  get sourceIp(): string {
    return clientAddress(this.#socket.remoteAddress) ?? '';
  }

  refusal(method: string, target: string): MeshauthError | undefined {
    // CONNECT (without a 'connect' listener Node would not even get here); the parser admitted the rest.
    if (!isForwardedMethod(method)) return methodInvalid();
    return checkH1Head(target, this.rawHeaders);
  }

  copyHeaders(out: string[], peer: VerifiedPeer | undefined): number {
    const policy = this.#context.policyFor(peer);
    if (policy.setsForwarding) setForwarding(out, this.sourceIp);
    return copyRequestHeaders(this.rawHeaders, policy, out);
  }

  reject(
    error: MeshauthError,
    extraHeaders: Readonly<Record<string, string>> | undefined,
    extraBody: Readonly<Record<string, string>> | undefined,
  ): void {
    const res = this.res;
    if (extraHeaders !== undefined && !res.headersSent) {
      for (const name in extraHeaders) res.setHeader(name, extraHeaders[name] as string);
    }
    // A refused request head closes the connection: the rest of its bytes cannot be trusted. So does any refusal on a
    // connection that has never had a request served, and one written while the request's body is still coming (the
    // connection is closed behind it: lingerAfterEarlyResponse).
    const { drain, served } = this.#context;
    const close =
      drainCloses(drain, res as ServerResponse) ||
      error.code === 'MESHAUTH_ERR_BAD_REQUEST' ||
      // Past 1,000 fields Node 20's view of the head is cut short, its framing headers maybe among what was cut.
      error.reason === 'header_count' ||
      !served.has(this.#socket) ||
      this.bodyStillComing();
    writeErrorH1(res, error, extraBody, close);
  }

  forwardHandler(peerId: string, startedAt: number): ForwardHandler {
    this.#context.served.add(this.#socket);
    // A LeanResponse keeps the surface of a ServerResponse the handler writes to.
    this.handler = forwardHandlerFor(this.res as ServerResponse, false, peerId, startedAt, this.#context);
    return this.handler;
  }

  onClose(listener: () => void): void {
    this.res.once('close', listener);
  }

  get closed(): boolean {
    return this.res.destroyed;
  }
}

/** A request node:http parsed, answered on its ServerResponse. */
export class H1Sink extends H1SinkBase {
  readonly #req: IncomingMessage;

  constructor(req: IncomingMessage, res: ServerResponse, context: SinkContext) {
    super(req.rawHeaders, req.socket, res, context);
    this.#req = req;
  }

  get headers(): IncomingHttpHeaders {
    return this.#req.headers;
  }

  body(): Readable {
    return this.#req;
  }

  protected bodyStillComing(): boolean {
    return bodyStillComing(this.#req);
  }

  /**
   * Nothing either way for the stream idle timeout (listener-core.ts), as H2Sink.idle. Before any response head,
   * with the request body still due and the socket read (nothing the peer sent waits on this side), what stalled is
   * the peer's upload (a slow body, RUDY): the app exchange, if it began, is cut (the app sees an incomplete body),
   * the peer gets 408 body_stalled with `Connection: close` (the rest of its body will not be read, so the
   * connection cannot carry another request), and the rejection is returned to be reported; node:http closes the
   * connection once the answer is written. Otherwise (a head went out, the body is complete, or reading is paused
   * because the request is queued or the app is not reading) the response is cut and undefined is returned: the
   * caller closes the connection.
   */
  idle(): MeshauthError | undefined {
    const res = this.res;
    if (res.headersSent || !peerStalledH1(this.#req)) return undefined;
    // Before the answer: an abort destroys the body the app read (the app client unhooks it from the socket first).
    this.handler?.supersede();
    const error = requestBodyStalled();
    writeErrorH1(res, error, undefined, true);
    return error;
  }
}

/**
 * A whole bodiless HTTP/1.1 GET or HEAD the listener's lean lane parsed itself (lean-lane.ts), answered through its
 * LeanResponse: what H1Sink does for the same request, without node:http's IncomingMessage and ServerResponse.
 */
export class LeanH1Sink extends H1SinkBase {
  #headers: IncomingHttpHeaders | undefined;

  constructor(request: FastRequest, res: LeanResponse, context: SinkContext) {
    super(request.raw, res.socket, res, context);
  }

  /** Node's header object, built only when a stage asks (the end-user path), by node:http's own rules. */
  get headers(): IncomingHttpHeaders {
    if (this.#headers === undefined) this.#headers = headerObjectH1(this.rawHeaders);
    return this.#headers;
  }

  body(): null {
    return null;
  }

  protected bodyStillComing(): boolean {
    return false;
  }
}

const addHeaderLine = (
  IncomingMessage.prototype as unknown as {
    _addHeaderLine(this: { joinDuplicateHeaders: boolean }, name: string, value: string, into: H1Headers): void;
  }
)._addHeaderLine;
const NOT_JOINED = { joinDuplicateHeaders: false };

/** `[name, value, …]` as node:http's `req.headers` (lower-case names, repeats joined or dropped as Node does). */
function headerObjectH1(raw: readonly string[]): IncomingHttpHeaders {
  const headers: H1Headers = {};
  for (let i = 0; i < raw.length; i += 2)
    addHeaderLine.call(NOT_JOINED, raw[i] as string, raw[i + 1] as string, headers);
  return headers;
}

export class H2Sink implements Sink {
  readonly h2 = true;
  readonly headers: IncomingHttpHeaders;
  readonly #stream: ServerHttp2Stream;
  /** The decoded header list as received (repeats included). */
  readonly #received: readonly string[];
  readonly #context: SinkContext;
  /** The app exchange's handler, once the request was dispatched to the app. */
  #handler: ForwardHandler | undefined;

  constructor(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    received: readonly string[],
    context: SinkContext,
  ) {
    this.#stream = stream;
    this.headers = headers;
    this.#received = received;
    this.#context = context;
  }

  refusal(method: string, _target: string, maxHeaderBytes: number): MeshauthError | undefined {
    if (!isForwardedMethod(method)) return methodInvalid();
    return checkH2Head(this.headers, this.#received, maxHeaderBytes);
  }

  get rawHeaders(): readonly string[] {
    return this.#received;
  }

  get authority(): string {
    return (this.headers[':authority'] as string | undefined) ?? this.headers.host ?? '';
  }

  get sourceIp(): string {
    return clientAddress(this.#stream.session?.socket?.remoteAddress) ?? '';
  }

  copyHeaders(out: string[], peer: VerifiedPeer | undefined): number {
    const policy = this.#context.policyFor(peer);
    if (policy.setsForwarding) setForwarding(out, this.sourceIp);
    const flags = copyH2RequestHeaders(this.headers, out, policy);
    return this.#stream.endAfterHeaders ? flags : flags | HAS_BODY;
  }

  body(): Readable {
    return h2RequestBody(this.#stream);
  }

  reject(
    error: MeshauthError,
    extraHeaders: Readonly<Record<string, string>> | undefined,
    extraBody: Readonly<Record<string, string>> | undefined,
  ): void {
    writeErrorH2(this.#stream, error, extraHeaders, extraBody);
  }

  forwardHandler(peerId: string, startedAt: number): ForwardHandler {
    const session = this.#stream.session;
    if (session !== undefined) this.#context.served.add(session);
    this.#handler = forwardHandlerFor(this.#stream, true, peerId, startedAt, this.#context);
    return this.#handler;
  }

  /**
   * No frame either way for the stream idle timeout (listener-core.ts). Before any response head, with the request
   * body still due and the peer free to send it, what stalled is the peer's upload (a slow body, RUDY): the app
   * exchange, if it began, is cut (the app sees an incomplete body), the peer gets 408 body_stalled, as the outbound
   * answers an app's stalled upload, and the rejection is returned to be reported. Otherwise (a response head went out, or
   * the wait is on this side: the body complete, or the peer's flow-control window used up because the request is
   * queued or the app is not reading) the stream is reset and undefined is returned.
   */
  idle(): MeshauthError | undefined {
    const stream = this.#stream;
    if (stream.headersSent || !peerStalled(stream)) {
      // A reset is all that is left once a head went out (a 408 cannot follow it). destroy(error): RST_STREAM
      // (INTERNAL_ERROR), never END_STREAM. Not CANCEL, though "no longer needed" (its defined meaning) reads closer to
      // a timeout: node:http2 clients take a CANCEL reset as a clean end ('end', no error) of a response that was
      // cut, while INTERNAL_ERROR fails it, as for the sidecar's other cut responses (ForwardHandler.onError);
      // test/integration/inbound-node-internals.test.ts pins both.
      stream.destroy(new Error('stream idle timeout'));
      return undefined;
    }
    this.#handler?.supersede();
    const error = requestBodyStalled();
    // The rest of the body is not wanted: writeErrorH2 cuts its pipe (what reached the app never reads as complete)
    // and closes the stream with RST_STREAM(NO_ERROR) once the answer is flushed (a complete response before the whole
    // request is allowed), so it is freed, not left half-open to idle out again.
    writeErrorH2(stream, error);
    return error;
  }

  onClose(listener: () => void): void {
    this.#stream.once('close', listener);
  }

  get closed(): boolean {
    return this.#stream.destroyed;
  }
}

/**
 * The peer could send more of the request body and does not: no END_STREAM yet, and its flow-control window for the
 * stream is open, so nothing it sent is waiting on this side (a queued request, an app not reading).
 */
function peerStalled(stream: ServerHttp2Stream): boolean {
  const state = stream.state;
  return state.remoteClose === 0 && (state.localWindowSize ?? 0) > 0;
}

/**
 * The peer could send more of the request body and does not: the body is not complete, and node:http is reading the
 * socket (it pauses it when the request's buffer is full because the request is queued or the app does not read:
 * the HTTP/1.1 form of a used-up flow-control window), so nothing the peer sent waits on this side.
 */
function peerStalledH1(req: IncomingMessage): boolean {
  // A request node:http no longer attaches to a socket (null) has no stall of the peer's to report.
  const socket = req.socket as IncomingMessage['socket'] | null;
  return !req.complete && socket !== null && !socket.isPaused();
}

/** Strip, then set: what the caller said about proxies was dropped; the listener says what it saw itself. */
function setForwarding(out: string[], sourceIp: string): void {
  out.push('x-forwarded-for', sourceIp, 'x-forwarded-proto', 'https');
}

/** The app exchange's handler for a sink of this listener: its telemetry, classifier, drain and stall limit. */
function forwardHandlerFor(
  sink: ServerResponse | ServerHttp2Stream,
  h2: boolean,
  peerId: string,
  startedAt: number,
  context: SinkContext,
): ForwardHandler {
  const { telemetry, classify, drain, forwardHooks } = context;
  return new ForwardHandler(sink, h2, peerId, startedAt, telemetry, classify, drain, forwardHooks);
}
