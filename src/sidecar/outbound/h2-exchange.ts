// One outbound request over a peer's HTTP/2 session: the caller's request (the app's HTTP/1.1 request at the
// outbound listener, a browser's at the edge gateway) becomes an h2 stream on an endpoint the set picks, its body is
// streamed with backpressure, and the stream's response is streamed back. The caller's side is the CallerBody and
// CallerResponse below; how a response head or an error is written to it is the listener's (H2ExchangeContext).
// Retries (once, on another endpoint when there is one) only what the peer provably never processed: a stream it
// refused (REFUSED_STREAM), a stream above the last id of its GOAWAY, a session that could not be opened or was
// already going away, and — for bodiless GET/HEAD/OPTIONS only — a connection that died before the response
// head. A body is replayable while it fits the replay buffer. Nothing is framed as complete unless it was:
// a response cut by the peer (RST_STREAM, also with NO_ERROR, before END_STREAM) destroys the caller's response
// (no terminating chunk), or is answered as the error it is while none of it reached the caller (holdHead), and an
// upload the app aborts resets the stream (RST_STREAM(CANCEL), never END_STREAM).
// Shared listeners read the exchange from a symbol slot, so a request allocates no closures.
import { type ClientHttp2Session, type ClientHttp2Stream, constants, type IncomingHttpHeaders } from 'node:http2';
import { performance } from 'node:perf_hooks';
import { Duplex, type Readable } from 'node:stream';
import type { Counter } from 'prom-client';
import { causeChain, isMeshauthError, MeshauthError } from '../../errors/index.js';
import { type H2HeaderList, headerListSize, requestHeadersOf, requestStream } from '../../platform/index.js';
import type { Logger, Metrics } from '../../telemetry/index.js';
import { PeerConnectError } from '../../tls/index.js';
import type { DataPlaneTelemetry } from '../data-plane-telemetry.js';
import type { Endpoint, PeerTarget } from '../endpoints/endpoint.js';
import { credentialsOf, refusedByGoaway, sessionErrorOf } from '../endpoints/endpoint.js';
import type { EndpointSet } from '../endpoints/endpoint-set.js';
import {
  leaveStreamSlotQueue,
  peerStreamLimit,
  releaseStreamSlot,
  type SlotWaiter,
  takeStreamSlot,
  waitForStreamSlot,
} from '../endpoints/stream-slots.js';
import type { DrainState } from '../forward-handler.js';
import { isHopByHop, isIdentityHeader } from '../http-headers.js';
import { Http1Client } from '../http1-client.js';
import { cutAfterHead, headThenNoBody, requestBodyStalled, unusableResponseHead } from '../pipeline/rejections.js';
import { type CredentialBinding, hookRejection } from './outbound-hooks.js';
import {
  CONNECTION_LOST,
  closedForProtocolError,
  peerResetText,
  RESPONSE_PROTOCOL_RESET,
  sessionProtocolErrorText,
} from './peer-reset-text.js';

const kExchange = Symbol('meshauth.h2Exchange');
/** The session whose stream slot (stream-slots.ts) the stream holds until it closes. */
const kSlotOf = Symbol('meshauth.streamSlotOf');
/** Set when the stream's readable side ended: true when the stream was already closed then (a reset). */
const kEndedByReset = Symbol('meshauth.endedByReset');
type Slot<T> = T & {
  [kExchange]?: H2Exchange | undefined;
  [kEndedByReset]?: boolean;
  [kSlotOf]?: ClientHttp2Session | undefined;
};
type RetryCounter = ReturnType<Counter<'direction' | 'reason'>['labels']>;

/** Request bodies up to this size are kept until the response head, so a refused stream can be sent again. */
export const REPLAY_LIMIT_BYTES = 64 * 1024;

export type RetryReason = 'refused_stream' | 'goaway' | 'connect' | 'connection_lost';

/** The caller's request body: `complete` only once the whole body arrived (a cut upload is never complete). */
export interface CallerBody extends Readable {
  readonly complete: boolean;
}

/** What the exchange writes the answer to: node:http's ServerResponse, or node:http2's compat response. */
export interface CallerResponse {
  readonly headersSent: boolean;
  readonly writableEnded: boolean;
  /** node:http2's compat response has no `destroyed`: its 'close' or its stream says the caller is gone. */
  readonly destroyed?: boolean;
  /** node:http2's compat response: the stream under it (closed once the browser reset it, or nghttp2 did). */
  readonly stream?: { readonly closed: boolean; readonly rstCode?: number };
  write(chunk: Buffer): boolean;
  end(): unknown;
  destroy(): unknown;
  on(event: 'close', listener: () => void): unknown;
  once(event: 'drain', listener: () => void): unknown;
}

/** The retry counters of the outbound direction (`meshauth_request_retries_total`), one child per reason. */
export function outboundRetryCounters(metrics: Metrics): Readonly<Record<RetryReason, RetryCounter>> {
  const retry = (reason: RetryReason) => metrics.requestRetries.labels('outbound', reason);
  return {
    refused_stream: retry('refused_stream'),
    goaway: retry('goaway'),
    connect: retry('connect'),
    connection_lost: retry('connection_lost'),
  };
}

export interface H2ExchangeContext<R extends CallerResponse> {
  readonly telemetry: DataPlaneTelemetry;
  readonly drain: DrainState;
  readonly logger: Logger;
  /**
   * outbound.timeout: the wait before a stream (counted from the arrival once the request has to wait), then the
   * idle limit of the stream (no header or body activity): 504, or 408 when the caller's body stalled (idle()).
   */
  readonly timeoutMs: number;
  readonly retries: Readonly<Record<RetryReason, RetryCounter>>;
  /**
   * Writes the peer's response head: `headers` is a flat list without pseudo-headers and identity headers, which
   * the writer may extend. A throw means the head cannot be sent (answered as an unusable response).
   */
  writeHead(res: R, status: number, headers: string[]): void;
  /**
   * The caller's response sends a written head only with its first body byte or its end (node:http, the outbound's
   * lean lane): the exchange then writes the peer's head only then too, so that a stream cut before any body byte is
   * answered with an error (and counted as one), not left as a connection closed without a status line. Unset, the
   * head is written when it arrives (node:http2's compat response sends it at once).
   */
  readonly holdHead?: boolean;
  /** Answers the caller with `error` before any response head; `close`: the caller's connection should close. */
  answer(res: R, error: MeshauthError, close: boolean): void;
  /** Ends a response whose head went out but whose body cannot be completed, so the caller sees it cut. */
  cut(res: R): void;
  /** Hands the request to an HTTP/1.1 client (the endpoint's peer chose http/1.1, or `outbound.http2: false`). */
  forwardHttp1(exchange: H2Exchange<R>, endpoint: Endpoint, client: Http1Client): void;
}

export class H2Exchange<R extends CallerResponse = CallerResponse> implements SlotWaiter {
  /** The request body; undefined when there is none. */
  readonly req: CallerBody | undefined;
  readonly res: Slot<R>;
  readonly method: string;
  readonly path: string;
  /** Flat `[name, value, …]` list (as HTTP/1.1 sends it); `host` becomes `:authority` on h2. */
  readonly headers: readonly string[];
  readonly hasBody: boolean;
  readonly startedAt: number;
  readonly #set: EndpointSet;
  readonly #context: H2ExchangeContext<R>;
  #h2Headers: H2HeaderList | undefined;
  #binding: CredentialBinding | undefined;
  #stream: Slot<ClientHttp2Stream> | undefined;
  /** The session #stream was opened on. */
  #session: ClientHttp2Session | undefined;
  #endpoint: Endpoint | undefined;
  /** The endpoint whose in-flight count this exchange holds. */
  #counted: Endpoint | undefined;
  #attempts = 0;
  #peerId = '';
  #responded = false;
  #done = false;
  /** The caller's response emitted 'close' (finished, or the caller went away). */
  #callerClosed = false;
  /** The stream went idle while the caller's body was still due and nothing waited on the peer (see idle()). */
  #callerStalled = false;
  /**
   * Armed while a write waits for 'drain', one per direction. node:http2's own stream timeout does not see a stalled
   * stream while other streams of the session move (it counts session writes), so a peer that stops reading one
   * upload, or an app that stops reading one response, would hold the exchange forever.
   */
  #uploadStall: NodeJS.Timeout | undefined;
  #downloadStall: NodeJS.Timeout | undefined;
  /**
   * Armed while the request waits for an endpoint, a connection or a stream slot (the name's first answer, a
   * connect, a retry's, the peer's stream limit or SETTINGS acknowledgement): the wait before a stream exists counts
   * toward outbound.timeout from the request's arrival, so a slow resolver, a black-holed endpoint and a retry do not
   * each get a timeout of their own.
   */
  #waitTimer: NodeJS.Timeout | undefined;
  /** The stream's idle timer was set to what was left of the timeout, not all of it: restored at the response head. */
  #shortTimeout = false;
  /** The session whose stream limit the request waits behind, in its line. */
  #waitingOn: ClientHttp2Session | undefined;
  /** Body chunks already read from the app, kept for a retry until the response head (undefined: not kept). */
  #replay: Buffer[] | undefined;
  #replayBytes = 0;
  #replayable = true;
  #bodyAttached = false;
  #bodyEnded = false;
  /** The peer's response head, held until its first body byte or end (H2ExchangeContext.holdHead), and its status. */
  #heldHead: string[] | undefined;
  #heldStatus = 0;
  /** When the held head arrived (performance.now()): the request's duration ends there, not at the first body byte. */
  #heldAt = 0;
  /** What node:http2 failed #stream with, if anything: the session's error when this sidecar ended the session. */
  #streamError: (Error & { code?: unknown }) | undefined;
  /** The stream's time ran out (timedOut): a cut then is an idle stream, not a reset. */
  #timedOut = false;

  constructor(
    req: CallerBody | undefined,
    res: R,
    set: EndpointSet,
    method: string,
    path: string,
    headers: readonly string[],
    hasBody: boolean,
    startedAt: number,
    context: H2ExchangeContext<R>,
  ) {
    this.req = hasBody ? req : undefined;
    this.res = res;
    this.#set = set;
    this.method = method;
    this.path = path;
    this.headers = headers;
    this.hasBody = hasBody;
    this.startedAt = startedAt;
    this.#context = context;
    this.#replay = hasBody ? [] : undefined;
  }

  get peerId(): string {
    return this.#peerId;
  }

  /** The caller is gone (or its answer is complete): nothing more may be written. */
  #callerGone(): boolean {
    return this.#callerClosed || this.res.destroyed === true || this.res.stream?.closed === true;
  }

  start(): void {
    if (this.#callerGone()) {
      // Gone while earlier stages ran (an HTTP/2 browser's reset during token verification): nothing to send. A
      // stream nghttp2 reset for its body is the broken upload resClosed counts, not a browser that left.
      if (this.#brokenUpload()) {
        this.bodyClosed();
        return;
      }
      this.#done = true;
      this.#context.telemetry.aborted('');
      return;
    }
    this.res[kExchange] = this;
    this.res.on('close', onResClose);
    this.#attempt(undefined);
  }

  /** Answers the caller with `error` (before the response head) or cuts its response (after). */
  fail(error: MeshauthError): void {
    if (this.#done) return;
    this.#done = true;
    this.#release();
    const res = this.res;
    if (this.#callerGone() || res.writableEnded) return;
    if (res.headersSent) {
      this.#context.cut(res);
      return;
    }
    this.#context.answer(res, error, this.#context.drain.draining);
    this.#context.telemetry.rejected(this.#peerId, error, this.startedAt);
  }

  /**
   * The HTTP/1.1 path to `endpoint` failed before any response head (`forwardHttp1` handed the request to a client).
   * As on HTTP/2, retry once what the peer provably never processed: a failed connect for every method (the client's
   * connector reports it as a PeerConnectError, before any request byte), a connection lost before the head only
   * for a bodiless GET/HEAD/OPTIONS. True when the retry took the request over; false: the caller answers `error`.
   */
  retryHttp1(error: Error, endpoint: Endpoint): boolean {
    const reason =
      error instanceof PeerConnectError
        ? this.#retriesConnect(error, endpoint)
          ? 'connect'
          : undefined
        : http1RetryReason(error, this.#idempotentWithoutBody());
    if (reason === undefined || this.#attempts >= 2 || !this.#replayable || this.#callerGone()) return false;
    // The body goes again only as it came: untouched (an HTTP/1.1 client that fails may destroy it, undici's
    // `request` does; read from, it would arrive in part).
    const body = this.req;
    if (this.hasBody && (body === undefined || body.destroyed || body.readableDidRead)) return false;
    this.#done = false;
    // Not from inside the client's error handling (it may be erroring a whole queue): the retry may go to that client.
    queueMicrotask(() => this.#retryOr(reason, endpoint, peerUnavailable(error.message, reason, error)));
    return true;
  }

  // --- attempts ---

  #attempt(skip: Endpoint | undefined): void {
    this.#attempts += 1;
    let picked: Endpoint | Promise<Endpoint>;
    try {
      picked = this.#set.pick(skip);
    } catch (error) {
      this.fail(asMeshauthError(error));
      return;
    }
    if (picked instanceof Promise) {
      this.#waitAtMost();
      picked.then(
        (endpoint) => this.#onEndpoint(endpoint),
        (error: unknown) => this.fail(asMeshauthError(error)),
      );
    } else {
      this.#onEndpoint(picked);
    }
  }

  #onEndpoint(endpoint: Endpoint): void {
    if (this.#done || this.#callerGone()) return;
    this.#endpoint = endpoint;
    const target = endpoint.target();
    if (target === undefined) {
      this.fail(new MeshauthError('MESHAUTH_ERR_NOT_READY', 'no SVID yet', { reason: 'not_ready' }));
    } else if (target instanceof Promise) {
      this.#waitAtMost();
      target.then(
        (ready) => this.#send(endpoint, ready),
        (error: unknown) => this.#connectFailed(endpoint, error),
      );
    } else {
      this.#send(endpoint, target);
    }
  }

  /**
   * Headers bound to the credentials the outbound hook saw (the passport link): rebound before sending on a
   * connection that presents other ones.
   */
  bindCredentials(binding: CredentialBinding | undefined): void {
    this.#binding = binding;
  }

  /** False when the request was refused: its bound headers could not be made for the target's credentials. */
  #boundFor(target: PeerTarget): boolean {
    const binding = this.#binding;
    if (binding === undefined) return true;
    const presented = credentialsOf(target);
    if (presented === undefined || presented === binding.credentials) return true;
    try {
      binding.rebind(presented);
    } catch (error) {
      this.fail(hookRejection(error));
      return false;
    }
    this.#binding = { credentials: presented, rebind: binding.rebind };
    this.#h2Headers = undefined;
    return true;
  }

  #send(endpoint: Endpoint, target: PeerTarget): void {
    if (this.#done || this.#callerGone()) return;
    this.#peerId = endpoint.peerId;
    if (!this.#boundFor(target)) return;
    // Only a request that waited or is a retry can have spent part of its timeout: the common one reads no clock.
    const left = this.#waitTimer !== undefined || this.#attempts > 1 ? this.#stopWaiting() : this.#context.timeoutMs;
    if (left <= 0) {
      this.fail(waitedTooLong(false));
      return;
    }
    if (!isSession(target)) {
      if (this.#bodyAttached) {
        // The body already went (partly) to an h2 stream: it cannot be handed to a client as a stream any more.
        this.fail(peerUnavailable('the peer switched protocols during a retry', 'reset'));
        return;
      }
      this.#done = true;
      this.#context.forwardHttp1(this, endpoint, target);
      return;
    }
    this.#h2Headers ??= requestHeaderList(this.method, this.path, this.headers);
    const listLimit = target.remoteSettings.maxHeaderListSize;
    if (listLimit !== undefined && headerListSize(this.#h2Headers) > listLimit) {
      // node:http2 will not send a head over the peer's advertised limit and closes the stream as if the peer had
      // reset it (ENHANCE_YOUR_CALM): answered as the peer would have answered it, 431.
      this.fail(
        new MeshauthError('MESHAUTH_ERR_HEADERS_TOO_LARGE', 'request head over the peer header list limit', {
          reason: 'header_list_size',
          detail: { limit: listLimit },
        }),
      );
      return;
    }
    // The session closed (a GOAWAY) or went away since it was handed out: nothing was sent. Checked here because only
    // Node 20 throws from request() then; later versions fail the stream a tick later, as a reset without a stream id.
    if (target.closed || target.destroyed) {
      this.#retryOr('goaway', endpoint, peerUnavailable('peer session closed', 'goaway'));
      return;
    }
    if (!takeStreamSlot(target)) {
      // The peer's stream limit is reached: wait in line for a stream of this session to end, within the timeout.
      this.#waitingOn = target;
      waitForStreamSlot(target, this);
      this.#waitAtMost();
      return;
    }
    let stream: Slot<ClientHttp2Stream>;
    try {
      stream = requestStream(target, requestHeadersOf(this.#h2Headers), !this.hasBody);
    } catch (error) {
      // Whatever else request() throws before a stream exists: nothing was sent.
      releaseStreamSlot(target);
      this.#retryOr('goaway', endpoint, peerUnavailable('peer session closed', 'goaway', error));
      return;
    }
    // The slot is the stream's until it closes (onStreamClose): nghttp2 counts a stream open until then, however
    // early this exchange was done with it (an answer before the end of the upload, a timeout).
    stream[kSlotOf] = target;
    this.#stream = stream;
    this.#session = target;
    this.#counted = endpoint;
    endpoint.inflight += 1;
    stream[kExchange] = this;
    // node:http2 ends the readable side (push(null), then 'end') both when END_STREAM arrives — the stream is
    // still open at that moment — and when RST_STREAM arrives, also with NO_ERROR — the stream is already closed.
    // Recording which one it was is the only way to tell a complete response from a cut one.
    stream.push = pushRecordingEnd;
    stream.on('response', onResponse);
    stream.once('end', onEnd);
    // The close handler reads rstCode and the session state; the error says whether this sidecar ended the session.
    stream.on('error', onStreamError);
    stream.once('close', onStreamClose);
    this.#shortTimeout = left < this.#context.timeoutMs;
    stream.setTimeout(left, onTimeout);
    if (this.hasBody) this.#sendBody(stream);
  }

  /** What is left of outbound.timeout for the response head, counted from the request's arrival. */
  remainingMs(): number {
    return this.startedAt + this.#context.timeoutMs - performance.now();
  }

  #waitAtMost(): void {
    if (this.#waitTimer !== undefined) return;
    this.#waitTimer = setTimeout(onWaitedTooLong, Math.max(1, this.remainingMs()), this);
  }

  /** Ends the wait; what is left of the timeout. */
  #stopWaiting(): number {
    clearTimeout(this.#waitTimer);
    this.#waitTimer = undefined;
    return Math.min(Math.ceil(this.remainingMs()), this.#context.timeoutMs);
  }

  /**
   * A stream slot of the session this request waits on is free: pick again. If that session ended meanwhile (the
   * peer closed it, or this sidecar's nghttp2 did for the peer's protocol error before the SETTINGS exchange was
   * over), nothing was sent: retried once, as for a session that went away.
   */
  slotFree(): void {
    const waited = this.#waitingOn;
    this.#waitingOn = undefined;
    if (this.#done) return;
    const endpoint = this.#endpoint as Endpoint;
    if (endpoint.removed) {
      // Its address left the DNS answer, or the sidecar is closing, while the request waited: never dialled again.
      this.#retryOr('goaway', endpoint, peerUnavailable('the endpoint was removed while the request waited', 'goaway'));
      return;
    }
    if (waited !== undefined && (waited.closed || waited.destroyed)) {
      const error = sessionErrorOf(waited);
      const answer = closedForProtocolError(error as (Error & { readonly code?: unknown }) | undefined)
        ? sessionProtocolError(error as Error)
        : peerUnavailable('peer session closed before the request could be sent', 'goaway');
      this.#retryOr('goaway', endpoint, answer);
      return;
    }
    this.#onEndpoint(endpoint);
  }

  /**
   * outbound.timeout passed while the request waited for an endpoint, a connection or a stream slot: 504, nothing
   * was sent. A session whose peer allows no stream at all is given up, so the next request tries a new connection.
   */
  waitedTooLong(): void {
    this.#waitTimer = undefined;
    if (this.#done || this.#stream !== undefined) return;
    const behind = this.#waitingOn;
    this.fail(waitedTooLong(behind !== undefined));
    if (behind !== undefined && peerStreamLimit(behind) === 0) {
      this.#endpoint?.abandon(behind, behind.pendingSettingsAck ? 'no_settings_ack' : 'no_streams');
    }
  }

  #connectFailed(endpoint: Endpoint, error: unknown): void {
    if (error instanceof PeerConnectError && this.#retriesConnect(error, endpoint)) {
      const answer = error.phase === 'identity' ? asMeshauthError(error) : undefined;
      this.#retryOr('connect', endpoint, answer ?? peerUnavailable(error.message, 'connect', error));
      return;
    }
    this.fail(asMeshauthError(error));
  }

  /**
   * A failed connect sent no request byte, so it is retried; a wrong peer identity only when another endpoint can be
   * taken now (the same one would present the same certificate).
   */
  #retriesConnect(error: PeerConnectError, endpoint: Endpoint): boolean {
    return error.phase !== 'identity' || this.#set.hasOtherAvailable(endpoint);
  }

  /** Retries when the first attempt failed for `reason` and the body can be sent again; else answers `error`. */
  #retryOr(reason: RetryReason, failed: Endpoint, error: MeshauthError): void {
    if (this.#done) return;
    if (this.#attempts >= 2 || !this.#replayable || this.#callerGone()) {
      this.fail(error);
      return;
    }
    this.#context.retries[reason].inc();
    this.#release();
    this.#stream = undefined;
    this.#streamError = undefined;
    this.req?.pause(); // body chunks wait in the socket until the next stream is there
    this.#attempt(failed);
  }

  /** A write has waited for 'drain' for the whole outbound.timeout: treated as the stream's own timeout (504 or a cut). */
  stalled(): void {
    this.#disarmStalls();
    const stream = this.#stream;
    if (stream !== undefined && !this.#done) this.timedOut(stream);
  }

  #disarmStalls(): void {
    clearTimeout(this.#uploadStall);
    clearTimeout(this.#downloadStall);
    this.#uploadStall = undefined;
    this.#downloadStall = undefined;
  }

  #release(): void {
    this.#disarmStalls();
    const waitingOn = this.#waitingOn;
    if (waitingOn !== undefined) {
      this.#waitingOn = undefined;
      leaveStreamSlotQueue(waitingOn, this);
    }
    if (this.#waitTimer !== undefined) {
      clearTimeout(this.#waitTimer);
      this.#waitTimer = undefined;
    }
    const counted = this.#counted;
    if (counted !== undefined) {
      counted.inflight -= 1;
      this.#counted = undefined;
    }
  }

  // --- request body ---

  #sendBody(stream: ClientHttp2Stream): void {
    const req = this.req as Slot<CallerBody>; // hasBody
    if (!this.#bodyAttached) {
      this.#bodyAttached = true;
      if (req.destroyed && !req.complete) {
        // The app gave up while the connection to the peer was being set up: reset, never send what we have.
        this.bodyClosed();
        return;
      }
      req[kExchange] = this;
      req.on('data', onReqData);
      req.once('end', onReqEnd);
      req.once('close', onReqClose);
      req.on('error', ignore); // 'close' with complete === false says the upload was cut
    } else {
      for (const chunk of this.#replay ?? []) stream.write(chunk);
    }
    if (this.#bodyEnded) stream.end();
    else req.resume();
  }

  bodyData(chunk: Buffer): void {
    const replay = this.#replay;
    if (replay !== undefined) {
      this.#replayBytes += chunk.length;
      if (this.#replayBytes > REPLAY_LIMIT_BYTES) {
        this.#replay = undefined;
        this.#replayable = false;
      } else {
        replay.push(chunk);
      }
    }
    // Answered already (the peer did not wait for the whole body): the rest is read and dropped, never held in the
    // socket, so the caller's connection can close cleanly behind the answer.
    if (this.#done) return;
    const stream = this.#stream;
    if (stream === undefined || stream.destroyed) {
      this.req?.pause();
      return;
    }
    if (!stream.write(chunk)) {
      this.req?.pause();
      stream.once('drain', onStreamDrain);
      this.#uploadStall ??= setTimeout(onStall, this.#context.timeoutMs, this);
    }
  }

  bodyEnded(): void {
    // node:http can end a request whose chunked body never finished (the app's connection ended mid-body and the
    // response was written): only a body the parser saw complete may end the stream.
    if (this.req?.complete !== true) {
      this.bodyClosed();
      return;
    }
    this.#bodyEnded = true;
    const stream = this.#stream;
    if (stream !== undefined && !stream.destroyed) stream.end();
  }

  /** The app's request closed: unless its body was complete, the peer must see a reset, never END_STREAM. */
  bodyClosed(): void {
    if (this.req?.complete === true) return;
    this.#replayable = false;
    const stream = this.#stream;
    if (stream !== undefined) abortStream(stream);
    if (this.#done) return;
    this.#done = true;
    this.#release();
    if (this.res.headersSent && this.res.stream?.rstCode === constants.NGHTTP2_PROTOCOL_ERROR) {
      // nghttp2 reset the gateway caller's stream for its body after the peer's head went out: the request is counted
      // already (its status), so the reset that cut it is reported as one, as a sidecar's ForwardHandler does.
      this.#context.telemetry.protocolReset(this.#peerId);
      return;
    }
    const error = new MeshauthError('MESHAUTH_ERR_BAD_REQUEST', 'request body incomplete', {
      reason: 'body_incomplete',
    });
    // The app is usually gone already; when its connection still writes (a bad chunk), it gets the 400.
    const res = this.res;
    if (!this.#callerGone() && !res.headersSent) this.#context.answer(res, error, true);
    this.#context.telemetry.rejected(this.#peerId, error, this.startedAt, { route: this.#set.routeKey });
  }

  /** The caller's body stopped arriving (idle()): 408 on a connection that closes, since the body is left unread. */
  #bodyStalled(): void {
    if (this.#done) return;
    this.#done = true;
    this.#release();
    const error = requestBodyStalled();
    const res = this.res;
    if (!this.#callerGone() && !res.headersSent) this.#context.answer(res, error, true);
    this.#context.telemetry.rejected(this.#peerId, error, this.startedAt, { route: this.#set.routeKey });
  }

  streamDrained(): void {
    clearTimeout(this.#uploadStall);
    this.#uploadStall = undefined;
    this.req?.resume();
  }

  // --- response ---

  response(stream: ClientHttp2Stream, headers: IncomingHttpHeaders): void {
    if (stream !== this.#stream || this.#done) return;
    this.#responded = true;
    // No callback: the one given at the start is still registered, and a second would run idle() twice.
    if (this.#shortTimeout) stream.setTimeout(this.#context.timeoutMs);
    this.#replay = undefined;
    this.#replayable = false;
    const status = Number(headers[':status']);
    if (!(status >= 100 && status <= 599)) {
      // nghttp2 checks only that :status has three digits, and node:http writes any of them. 600–999 are no HTTP
      // status (RFC 9110 §15), which an app's client may read any way: refused as the HTTP/1.1 path refuses them.
      abortStream(stream);
      this.fail(unusableResponseHead({ detail: { peerStatus: status } })); // `status` in the line is the answer's, 502
      return;
    }
    const out: string[] = [];
    for (const name in headers) {
      // Pseudo-headers; identity headers (only the sidecar asserts identities to the app); hop-by-hop headers that
      // HTTP/2 lets through (Proxy-Authenticate would tell the app's client that its proxy, the sidecar, wants
      // credentials).
      if (name.charCodeAt(0) === 0x3a /* : */ || isIdentityHeader(name, false) || isHopByHop(name)) continue;
      const value = headers[name];
      if (typeof value === 'string') out.push(name, value);
      else if (Array.isArray(value)) for (const v of value) out.push(name, v);
    }
    if (this.#context.holdHead === true) {
      this.#heldStatus = status;
      this.#heldHead = out;
      this.#heldAt = performance.now();
    } else if (!this.#writeHead(stream, status, out)) {
      return;
    }
    // Only now: node:http2 emits 'response' on the next tick, so DATA read in the same chunk as HEADERS would
    // otherwise reach the response before its head. Until then the body waits in the stream's buffer.
    stream.on('data', onData);
  }

  /**
   * Writes the peer's head to the caller and counts the request (timed to `headAt` when the head was held); false when
   * it cannot be sent (answered 502).
   */
  #writeHead(stream: ClientHttp2Stream, status: number, headers: string[], headAt?: number): boolean {
    try {
      this.#context.writeHead(this.res, status, headers);
    } catch (cause) {
      // A status or header value Node refuses to send (ERR_INVALID_CHAR…): the peer's answer is unusable.
      abortStream(stream);
      this.fail(unusableResponseHead({ cause }));
      return false;
    }
    this.#context.telemetry.completed(this.#peerId, status, this.startedAt, headAt);
    return true;
  }

  /** The held head goes out with the first body byte or the end; false when it may not (the exchange is over). */
  #writeHeldHead(): boolean {
    const headers = this.#heldHead as string[];
    this.#heldHead = undefined;
    return !this.#done && this.#writeHead(this.#stream as ClientHttp2Stream, this.#heldStatus, headers, this.#heldAt);
  }

  data(chunk: Buffer): void {
    if (this.#heldHead !== undefined && !this.#writeHeldHead()) return;
    if (!this.res.write(chunk)) {
      this.#stream?.pause();
      this.res.once('drain', onResDrain);
      this.#downloadStall ??= setTimeout(onStall, this.#context.timeoutMs, this);
    }
  }

  ended(stream: ClientHttp2Stream): void {
    if (stream !== this.#stream || this.#done) return;
    if (!this.#responded) {
      this.fail(
        new MeshauthError('MESHAUTH_ERR_UPSTREAM_PROTOCOL', 'stream ended without a response', {
          reason: 'no_response',
        }),
      );
      return;
    }
    if ((stream as Slot<ClientHttp2Stream>)[kEndedByReset] !== false) {
      this.#truncated(stream);
      return;
    }
    if (this.#heldHead !== undefined && !this.#writeHeldHead()) return;
    this.#done = true;
    this.#release();
    this.res.end();
    // The peer answered whole before the upload's end: the rest is not wanted, and the stream would stay half open,
    // its slot held, for as long as the app keeps sending (or for good, if the peer never opens its window again).
    if (this.hasBody && !this.#bodyEnded) abortStream(stream);
  }

  /**
   * node:http2's stream timer: no frame either way for outbound.timeout. With the caller's body still due, no
   * response head yet and no write waiting for the peer's window, what stalled is the caller's own upload (a slow
   * body, RUDY): answered 408 and logged as the caller's, not 504 blaming a peer that was waiting for the body.
   */
  idle(stream: ClientHttp2Stream): void {
    if (this.hasBody && !this.#bodyEnded && !this.#responded && this.#uploadStall === undefined) {
      this.#callerStalled = true;
    }
    this.timedOut(stream);
  }

  /**
   * The stream's time is up: it is reset and the caller answered now, not when the stream closes. node:http2 never
   * closes a stream whose session nghttp2 stopped reading (a response header block it refused), and waiting for that
   * close left the caller without an answer for good. Its session is then checked (Endpoint.checkAlive).
   */
  timedOut(stream: ClientHttp2Stream): void {
    if (stream !== this.#stream || this.#done) return;
    abortStream(stream);
    this.#timedOut = true;
    if (this.#responded) this.#truncated(stream);
    else if (this.#callerStalled) this.#bodyStalled();
    else
      this.fail(
        new MeshauthError('MESHAUTH_ERR_UPSTREAM_TIMEOUT', 'peer did not answer in time', { reason: 'timeout' }),
      );
    // A peer that went silent on a live connection, or a session nghttp2 stopped reading, would take every later
    // request's timeout too: a PING it does not acknowledge drops the session.
    const session = this.#session;
    if (session !== undefined) this.#endpoint?.checkAlive(session);
  }

  /** The stream closed: retry what the peer never processed, else answer (or cut) the caller's response. */
  streamClosed(stream: Slot<ClientHttp2Stream>): void {
    // node:http2 frees a stream's native handle through a weak callback, so the stream object outlives its
    // request by a GC cycle or two; cutting its link to the exchange keeps the response and request objects
    // from being promoted with it.
    stream[kExchange] = undefined;
    if (stream !== this.#stream || this.#done) {
      if (stream === this.#stream) this.#release();
      return;
    }
    if (this.#responded) {
      this.#truncated(stream);
      return;
    }
    const endpoint = this.#endpoint as Endpoint;
    // stream.session is already unset when the session was torn down: use the one the stream was opened on.
    const session = this.#session as ClientHttp2Session;
    const code = stream.rstCode;
    if (code === constants.NGHTTP2_REFUSED_STREAM) {
      this.#retryOr('refused_stream', endpoint, peerUnavailable('peer refused the stream', 'refused_stream'));
    } else if (refusedByGoaway(session, stream.id)) {
      this.#retryOr('goaway', endpoint, peerUnavailable('peer went away before the stream', 'goaway'));
    } else if (session.destroyed && closedForProtocolError(this.#streamError)) {
      // This sidecar's nghttp2 closed the session for what the peer sent (a first frame other than SETTINGS, a
      // flood): named as that, not as a peer that went away. A bodiless GET/HEAD/OPTIONS is still retried once, as
      // for any connection lost before the head; the retry's endpoint may well be sound.
      const error = sessionProtocolError(this.#streamError as Error);
      if (this.#idempotentWithoutBody()) this.#retryOr('connection_lost', endpoint, error);
      else this.fail(error);
    } else if (code === constants.NGHTTP2_PROTOCOL_ERROR) {
      // A malformed response (nghttp2 refuses it and resets the stream) or a peer that says we broke the protocol.
      this.fail(
        new MeshauthError('MESHAUTH_ERR_UPSTREAM_PROTOCOL', 'peer sent a malformed response', {
          reason: 'protocol_error',
        }),
      );
    } else if (session.destroyed && this.#idempotentWithoutBody()) {
      this.#retryOr('connection_lost', endpoint, peerUnavailable(CONNECTION_LOST, 'connection_lost'));
    } else if (session.destroyed) {
      const text = `${CONNECTION_LOST}; not retried, since the peer may have processed it`;
      this.fail(peerUnavailable(text, 'connection_lost'));
    } else {
      this.fail(peerUnavailable(peerResetText(code), 'reset'));
    }
  }

  /** node:http2 failed the stream (before its 'close'): kept, since its code says who ended the session. */
  streamErrored(stream: ClientHttp2Stream, error: Error): void {
    if (stream === this.#stream) this.#streamError = error;
  }

  /** The caller went away: cancel the stream unless it already finished. */
  resClosed(): void {
    this.#callerClosed = true;
    if (this.#done) return;
    if (this.#bodyAttached && this.req?.complete !== true) {
      this.bodyClosed(); // the app's connection broke mid-upload (node:http may close the response first)
      return;
    }
    if (this.#brokenUpload()) {
      // nghttp2 reset the gateway caller's stream for its body while the peer stream was still being set up: the
      // same broken upload as above, not a caller that went away.
      this.bodyClosed();
      return;
    }
    this.#done = true;
    this.#release();
    const stream = this.#stream;
    if (stream !== undefined) abortStream(stream);
    // The peer had answered, its head held for the body: counted with the peer's status, as a head written is.
    if (this.#heldHead !== undefined) {
      this.#context.telemetry.completed(this.#peerId, this.#heldStatus, this.startedAt, this.#heldAt);
    }
  }

  /** nghttp2 reset the gateway caller's stream for its body (shorter or longer than its content-length). */
  #brokenUpload(): boolean {
    return (
      this.req !== undefined &&
      this.req.complete !== true &&
      this.res.stream?.rstCode === constants.NGHTTP2_PROTOCOL_ERROR
    );
  }

  resDrained(): void {
    clearTimeout(this.#downloadStall);
    this.#downloadStall = undefined;
    this.#stream?.resume();
  }

  /**
   * The stream ended before the response did (a reset, a lost connection, the timeout). With none of the response
   * at the caller yet (its head held), the caller is answered with the error it is and that is what is counted;
   * otherwise its response is cut, never framed as complete, and the cut counted as a reset beside its status.
   */
  #truncated(stream: ClientHttp2Stream): void {
    if (this.#done) return;
    const code = stream.rstCode;
    const session = this.#session as ClientHttp2Session;
    const error = this.#streamError;
    let reason: 'protocol_error' | 'stream_idle_timeout' | 'peer_response_truncated';
    let why: string;
    let message: string;
    if (this.#timedOut) {
      reason = 'stream_idle_timeout';
      why = 'nothing moved on the stream for outbound.timeout (the peer sent nothing, or the caller read nothing)';
      message = 'peer stream idle mid-response; response to the app aborted';
    } else if (session.destroyed && closedForProtocolError(error)) {
      reason = 'protocol_error';
      why = sessionProtocolErrorText(error as Error);
      message = 'peer stream reset by this sidecar for an HTTP/2 protocol error; response to the app aborted';
    } else if (code === constants.NGHTTP2_PROTOCOL_ERROR && !session.destroyed) {
      reason = 'protocol_error';
      why = RESPONSE_PROTOCOL_RESET;
      message = 'peer stream reset by this sidecar for an HTTP/2 protocol error; response to the app aborted';
    } else if (session.destroyed) {
      reason = 'peer_response_truncated';
      why = 'the connection to the peer closed';
      message = 'connection to the peer closed mid-response; response to the app aborted';
    } else {
      reason = 'peer_response_truncated';
      why = peerResetText(code);
      message = 'peer reset the stream mid-response; response to the app aborted';
    }
    if (this.#heldHead !== undefined) {
      this.fail(
        reason === 'stream_idle_timeout'
          ? headThenNoBody()
          : cutAfterHead(why, reason === 'protocol_error' ? 'protocol_error' : 'response_cut', {
              detail: { rstCode: code },
            }),
      );
      return;
    }
    this.#done = true;
    this.#release();
    this.#context.cut(this.res); // never frame a truncated body as complete
    this.#context.telemetry.responseCut(this.#peerId, reason, message, {
      rstCode: code,
      why,
      route: this.#set.routeKey,
    });
  }

  #idempotentWithoutBody(): boolean {
    if (this.hasBody) return false;
    const m = this.method;
    return m === 'GET' || m === 'HEAD' || m === 'OPTIONS';
  }
}

/**
 * Resets a stream without ever sending END_STREAM first: node:http2's close(code) ends the writable side (an empty
 * DATA frame with END_STREAM) before the RST_STREAM, so a peer could take a cut upload as complete. While the
 * request is still being sent, destroy() resets it (INTERNAL_ERROR) with the writable side already torn down.
 */
function abortStream(stream: ClientHttp2Stream): void {
  if (stream.closed || stream.destroyed) return;
  if (stream.writableEnded) stream.close(constants.NGHTTP2_CANCEL);
  else stream.destroy(new Error('request aborted before its end'));
}

/**
 * HTTP/2 request headers from the flat HTTP/1 list: lower-case names, `host` as `:authority` (one: the last Host, should
 * a path ever pass two; the listeners refuse a request with two).
 */
function requestHeaderList(method: string, path: string, flat: readonly string[]): H2HeaderList {
  const out: H2HeaderList = [':method', method, ':path', path, ':scheme', 'https'];
  let authority = -1;
  for (let i = 0; i < flat.length; i += 2) {
    const name = (flat[i] as string).toLowerCase();
    const value = flat[i + 1] as string;
    if (name !== 'host') out.push(name, value);
    else if (authority === -1) authority = out.push(':authority', value) - 1;
    else out[authority] = value;
  }
  return out;
}

function isSession(target: PeerTarget): target is ClientHttp2Session {
  return !(target instanceof Http1Client);
}

/** A connection lost before the response head, not at connect: retried only for a bodiless GET/HEAD/OPTIONS. */
function http1RetryReason(error: Error, bodilessIdempotent: boolean): RetryReason | undefined {
  const code = (error as Error & { code?: string }).code;
  const lost = code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE';
  return lost && bodilessIdempotent ? 'connection_lost' : undefined;
}

/** 502: this sidecar closed the peer's session for its protocol breach or flood (closedForProtocolError). */
function sessionProtocolError(error: Error): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_UPSTREAM_PROTOCOL', sessionProtocolErrorText(error), {
    reason: 'protocol_error',
  });
}

function peerUnavailable(message: string, reason: string, cause?: unknown): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_PEER_UNAVAILABLE', message, {
    reason,
    ...(cause === undefined ? {} : { cause }),
  });
}

function asMeshauthError(error: unknown): MeshauthError {
  for (const e of causeChain(error)) {
    if (isMeshauthError(e)) return e;
  }
  return peerUnavailable('peer sidecar unavailable', 'connect', error);
}

/** node:http2 streams do not override Readable.push (checked by the outbound truncation tests). */
const readablePush = Duplex.prototype.push;

/** Readable.push of client streams, recording how the readable side ended (see kEndedByReset). */
function pushRecordingEnd(this: Slot<ClientHttp2Stream>, chunk: unknown, encoding?: BufferEncoding): boolean {
  if (chunk === null && this[kEndedByReset] === undefined) this[kEndedByReset] = this.closed;
  return readablePush.call(this, chunk, encoding);
}

function onWaitedTooLong(exchange: H2Exchange): void {
  exchange.waitedTooLong();
}

function waitedTooLong(behindStreamLimit: boolean): MeshauthError {
  const message = behindStreamLimit
    ? "no stream to the peer within outbound.timeout (its session's stream limit was reached)"
    : 'no connection to the peer within outbound.timeout';
  return new MeshauthError('MESHAUTH_ERR_UPSTREAM_TIMEOUT', message, { reason: 'timeout' });
}

function onResponse(this: Slot<ClientHttp2Stream>, headers: IncomingHttpHeaders): void {
  this[kExchange]?.response(this, headers);
}

function onData(this: Slot<ClientHttp2Stream>, chunk: Buffer): void {
  this[kExchange]?.data(chunk);
}

function onEnd(this: Slot<ClientHttp2Stream>): void {
  this[kExchange]?.ended(this);
}

function onTimeout(this: Slot<ClientHttp2Stream>): void {
  this[kExchange]?.idle(this);
}

function onStall(exchange: H2Exchange): void {
  exchange.stalled();
}

function onStreamError(this: Slot<ClientHttp2Stream>, error: Error): void {
  this[kExchange]?.streamErrored(this, error);
}

function onStreamClose(this: Slot<ClientHttp2Stream>): void {
  const session = this[kSlotOf];
  if (session !== undefined) {
    this[kSlotOf] = undefined;
    releaseStreamSlot(session);
  }
  this[kExchange]?.streamClosed(this);
}

function onStreamDrain(this: Slot<ClientHttp2Stream>): void {
  this[kExchange]?.streamDrained();
}

function onResClose(this: Slot<CallerResponse>): void {
  this[kExchange]?.resClosed();
}

function onResDrain(this: Slot<CallerResponse>): void {
  this[kExchange]?.resDrained();
}

function onReqData(this: Slot<CallerBody>, chunk: Buffer): void {
  this[kExchange]?.bodyData(chunk);
}

function onReqEnd(this: Slot<CallerBody>): void {
  this[kExchange]?.bodyEnded();
}

function onReqClose(this: Slot<CallerBody>): void {
  this[kExchange]?.bodyClosed();
}

function ignore(): void {}
