// ForwardHandler: an undici dispatch handler that streams the upstream response into the downstream HTTP/1
// response or HTTP/2 stream with backpressure (`dispatch` with a raw handler was the fastest of undici's APIs for a
// proxy). One object per request; the shared listeners below read it from a symbol slot instead of closing
// over it, so a request allocates no closures. Errors before the response head become JSON error responses (with
// holdHead, also an answer cut after its head but before any of its body reached the caller).
import type { ServerResponse } from 'node:http';
import { constants as h2constants, type ServerHttp2Stream } from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import type { MeshauthError } from '../errors/index.js';
import { responseHeadersOf } from '../platform/index.js';
import { cutResponse } from './cut-response.js';
import type { DataPlaneTelemetry } from './data-plane-telemetry.js';
import { bodyStillComing } from './early-response.js';
import { writeErrorH1, writeErrorH2 } from './error-response.js';
import { hasTransferCoding, responseHeadersH1, responseHeadersH2 } from './http-headers.js';
import { closeAfterEarlyResponse } from './inbound/request-body.js';
import { cutAfterHead, headThenNoBody } from './pipeline/rejections.js';

export type ErrorClassifier = (error: Error) => MeshauthError;

/** Shared by every handler of one listener: read when a response starts, so draining applies at once. */
export interface DrainState {
  draining: boolean;
  /**
   * Whether an HTTP/1.1 answer is owed on `res`'s connection after `res` (a request pipelined behind it, already
   * running: node:http emits each request as it parses it). The drain then keeps `res`'s connection alive and closes
   * after the last answer owed: an answer that closed it first would have node:http drop those queued behind, their
   * requests run all the same. Unset where nothing is pipelined.
   */
  owedAfter?: (res: ServerResponse) => boolean;
}

/** Whether a SIGTERM drain closes `res`'s HTTP/1.1 connection after it: draining, and no answer owed after it. */
export function drainCloses(drain: DrainState, res: ServerResponse): boolean {
  return drain.draining && drain.owedAfter?.(res) !== true;
}

const kHandler = Symbol('meshauth.forwardHandler');
/** Set on a sink the sidecar itself resets (idle timeout): its close is already counted, not a caller abort. */
export const kResetBySidecar = Symbol('meshauth.resetBySidecar');
type Sink = (ServerResponse | ServerHttp2Stream) & { [kHandler]?: ForwardHandler; [kResetBySidecar]?: boolean };

/** A ForwardHandler took `sink` (its close is that handler's to report: #callerGone). */
export function forwarding(sink: ServerResponse | ServerHttp2Stream): boolean {
  return (sink as Sink)[kHandler] !== undefined;
}

/** What the outbound's HTTP/1.1 path to a peer learns from an exchange. */
export interface ForwardHooks {
  /** A response head arrived (the endpoint answered). */
  headReceived?(): void;
  /**
   * The SPIFFE ID of the peer the request is written to, read when a verified connection takes it: the ID known at
   * dispatch is '' while the endpoint's first connection is still being made.
   */
  peerId?(): string;
  /** Asked before an error is answered (no response head yet): true when it sent the request again. */
  retry?(error: Error): boolean;
  /** This dispatch is over (completed, failed, retried elsewhere or dropped): called once. */
  settled?(): void;
  /**
   * How long the request may wait for a connection of a bounded pool (undici's headersTimeout starts only when the
   * request is written, and then takes over); past it the request is dropped and answered 504.
   */
  headTimeoutMs?: number;
  /**
   * How long a write to the caller may wait for 'drain' before the exchange is reset. node:http2's stream timeout
   * does not see a stalled stream while other streams of its session move (it counts session writes), so a caller
   * that stops reading one response held it, and the app connection under it, for as long as it kept another
   * stream busy.
   */
  stallTimeoutMs?: number;
  /**
   * The caller's response sends a written head only with its first body byte or its end (node:http, the outbound's
   * lean lane): the answer's head is then held until one of those, so that an answer cut before any body byte is
   * answered as the error it is (502, or 504 for a peer gone silent) and counted as that, never left as a connection
   * closed without a status line while the peer's status was counted. Only the outbound's path to a peer sets it.
   */
  holdHead?: boolean;
}

/** A response with a transfer coding besides chunked fails as a malformed one (classified 502 on both directions). */
const CODED_RESPONSE = 'HPE_INVALID_TRANSFER_ENCODING';
/** A response status above 599: failed with llhttp's code for an invalid status, so it is classified a malformed answer. */
const INVALID_STATUS = 'HPE_INVALID_STATUS';
/** A response head node:http2 refuses to send: failed with llhttp's code for an invalid header, a malformed answer. */
const UNSENDABLE_HEAD = 'HPE_INVALID_HEADER_TOKEN';

/**
 * Why a response head cannot be passed on, as the llhttp code its failure is classified by (a malformed answer, 502):
 * a transfer coding besides chunked, whose coded bytes would reach the caller undeclared, or a status above 599, which
 * no HTTP status is (node:http2 cannot send it, node:http would pass it on). Undefined when it can.
 */
export function unusableAnswerHead(
  status: number,
  raw: readonly Buffer[],
): { readonly code: string; readonly message: string } | undefined {
  if (hasTransferCoding(raw)) return { code: CODED_RESPONSE, message: 'response transfer coding besides chunked' };
  if (status > 599) return { code: INVALID_STATUS, message: `response status ${status}` };
  return undefined;
}

/** What a head that did not come in time is answered with (the classifiers map undici's code to 504). */
function headTimeout(): Error {
  return Object.assign(new Error('no response head in time'), { code: 'UND_ERR_HEADERS_TIMEOUT' });
}

/**
 * What an answer whose head was held (ForwardHooks.holdHead, and the gateway's HTTP/1.1 browsers) and that failed
 * before any body byte is answered with: 504 when the peer went silent after its head, else 502 with the words and
 * reasons of the HTTP/2 path (`response_cut`; `protocol_error` when its body broke HTTP/1.1 and `closer` — this
 * sidecar, the gateway — closed the connection).
 */
export function cutBeforeBody(error: Error, closer = 'this sidecar'): MeshauthError {
  const code = (error as Error & { code?: unknown }).code;
  if (code === 'UND_ERR_BODY_TIMEOUT') return headThenNoBody(error);
  const malformed = typeof code === 'string' && code.startsWith('HPE_');
  // One phrase for a close and a reset: a TLS socket on its own TCP handle reports a peer's RST as an end, so the two
  // cannot be told apart reliably (the cause in the line says what Node reported).
  const why = malformed
    ? `its body broke HTTP/1.1 (${code}); ${closer} closed the connection`
    : 'the connection to the peer closed';
  return cutAfterHead(why, malformed ? 'protocol_error' : 'response_cut', { cause: error });
}

export class ForwardHandler implements Dispatcher.DispatchHandler {
  readonly #sink: Sink;
  readonly #h2: boolean;
  readonly #telemetry: DataPlaneTelemetry;
  readonly #classify: ErrorClassifier;
  readonly #drain: DrainState;
  #peerId: string;
  readonly #startedAt: number;
  readonly #hooks: ForwardHooks | undefined;
  #abort: ((error?: Error) => void) | undefined;
  #headTimer: NodeJS.Timeout | undefined;
  #stallTimer: NodeJS.Timeout | undefined;
  #resume: (() => void) | undefined;
  /** The answer's head, held until its first body byte or its end (ForwardHooks.holdHead), and its status. */
  #heldHead: string[] | undefined;
  #heldStatus = 0;
  /** When the held head arrived (performance.now()): the request's duration ends there, not at the first body byte. */
  #heldAt = 0;
  #done = false;
  #settled = false;

  constructor(
    sink: ServerResponse | ServerHttp2Stream,
    h2: boolean,
    peerId: string,
    startedAt: number,
    telemetry: DataPlaneTelemetry,
    classify: ErrorClassifier,
    drain: DrainState,
    hooks?: ForwardHooks,
  ) {
    this.#sink = sink as Sink;
    this.#h2 = h2;
    this.#peerId = peerId;
    this.#startedAt = startedAt;
    this.#telemetry = telemetry;
    this.#classify = classify;
    this.#drain = drain;
    this.#hooks = hooks;
    if (hooks?.headTimeoutMs !== undefined) this.#headTimer = setTimeout(onHeadTimeout, hooks.headTimeoutMs, this);
    this.#sink[kHandler] = this;
    sink.on('close', onSinkClose); // 'close' comes once; `on` skips the wrapper `once` allocates per request
  }

  onConnect(abort: (error?: Error) => void): void {
    // Written now: from here undici's headersTimeout, which a body being sent keeps alive, bounds the wait.
    clearTimeout(this.#headTimer);
    const peerId = this.#hooks?.peerId?.();
    if (peerId !== undefined) this.#peerId = peerId;
    // Answered while it waited for a connection (504 past headTimeoutMs, or superseded): throwing drops the request
    // before it is written and leaves the connection to the next one; abort() would destroy a healthy kept-alive one.
    if (this.#done) throw headTimeout();
    if (this.#sink.destroyed) {
      // The caller left while the request waited: dropped unsent, so the app connection (perhaps a kept-alive one)
      // serves the next request instead of being destroyed with it.
      this.#done = true;
      this.#callerGone();
      throw new Error('downstream closed');
    }
    this.#abort = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true; // informational responses are not forwarded
    const unusable = unusableAnswerHead(statusCode, rawHeaders);
    if (unusable !== undefined) {
      // The abort fails this exchange (onError, classified with llhttp's own code for it).
      this.#abort?.(Object.assign(new Error(unusable.message), { code: unusable.code }));
      return false;
    }
    clearTimeout(this.#headTimer);
    this.#hooks?.headReceived?.();
    this.#resume = resume;
    if (this.#h2) {
      const stream = this.#sink as ServerHttp2Stream;
      if (stream.destroyed) return false;
      try {
        stream.respond(responseHeadersOf(responseHeadersH2(statusCode, rawHeaders)));
      } catch (error) {
        // A head HTTP/2 cannot carry (a field that may appear once, repeated: two Content-Types, two Dates): the
        // app answered, so a malformed answer (502), not an unavailable app (503, which says a retry is safe).
        const message = error instanceof Error ? error.message : String(error);
        this.#abort?.(
          Object.assign(new Error(`response head not sendable over HTTP/2: ${message}`), { code: UNSENDABLE_HEAD }),
        );
        return false;
      }
      this.#telemetry.completed(this.#peerId, statusCode, this.#startedAt);
    } else if (this.#hooks?.holdHead === true) {
      // Written with the first body byte or the end, which llhttp reports in the same parse when they came with the
      // head (the usual case): nothing is allocated or armed for the wait. The client's body timeout bounds it.
      this.#heldStatus = statusCode;
      this.#heldHead = responseHeadersH1(rawHeaders, [], statusCode);
      this.#heldAt = performance.now();
    } else {
      this.#writeHeadH1(statusCode, responseHeadersH1(rawHeaders, [], statusCode));
    }
    if (statusCode === 204 || statusCode === 304) {
      // No content by definition: the response is complete with its head. undici takes a 304's Content-Length
      // (which names the size of the representation it stands for) for a body it then misses, and fails the
      // exchange after the head (UND_ERR_RES_CONTENT_LENGTH_MISMATCH): that must neither cut nor retry this answer.
      this.onComplete();
    }
    return true;
  }

  /** Writes the answer's head to the HTTP/1 caller and counts the request with its status (timed to `headAt`, if held). */
  #writeHeadH1(status: number, headers: string[], headAt?: number): void {
    const res = this.#sink as ServerResponse;
    // SIGTERM drain: no further keep-alive. An answer ahead of the request body's end closes the connection after
    // it (lingerAfterEarlyResponse): the caller learns so before its next request.
    if (drainCloses(this.#drain, res) || bodyStillComing(res.req)) headers.push('connection', 'close');
    res.writeHead(status, headers);
    this.#telemetry.completed(this.#peerId, status, this.#startedAt, headAt);
  }

  /** The held head goes out (its first body byte or its end came); false when it cannot be sent (answered 502). */
  #writeHeldHead(): boolean {
    const headers = this.#heldHead as string[];
    this.#heldHead = undefined;
    try {
      this.#writeHeadH1(this.#heldStatus, headers, this.#heldAt);
      return true;
    } catch (cause) {
      // A field node:http refuses to send: a malformed answer (502, by llhttp's code, which no retry rule takes), as
      // when the head was written on arrival.
      const message = cause instanceof Error ? cause.message : String(cause);
      const error = Object.assign(new Error(`response head not sendable: ${message}`), { code: UNSENDABLE_HEAD });
      this.onError(error);
      this.#abort?.(error); // the rest of the answer is not read: its connection goes
      return false;
    }
  }

  onData(chunk: Buffer): boolean {
    if (this.#heldHead !== undefined && !this.#writeHeldHead()) return false;
    const written = this.#sink.write(chunk);
    if (!written) {
      this.#sink.once('drain', onSinkDrain);
      const stallMs = this.#hooks?.stallTimeoutMs;
      if (stallMs !== undefined) this.#stallTimer ??= setTimeout(onStall, stallMs, this);
    }
    return written;
  }

  onComplete(): void {
    if (this.#done) return; // already complete at its head (204, 304)
    if (this.#heldHead !== undefined && !this.#writeHeldHead()) return;
    this.#done = true;
    clearTimeout(this.#stallTimer);
    this.#settle();
    this.#sink.end();
    // An h2 request body still open once the app's answer ended is not wanted: RST_STREAM(NO_ERROR) after the answer.
    if (this.#h2) closeAfterEarlyResponse(this.#sink as ServerHttp2Stream);
  }

  onError(error: Error): void {
    clearTimeout(this.#stallTimer);
    this.#settle();
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#headTimer);
    const sink = this.#sink;
    if (sink.destroyed || (this.#h2 ? (sink as ServerHttp2Stream).closed : (sink as ServerResponse).writableEnded)) {
      // The caller went away first (its request body failed), unless the sidecar reset it: nothing to answer.
      this.#callerGone();
      return;
    }
    if (this.#h2 ? (sink as ServerHttp2Stream).headersSent : (sink as ServerResponse).headersSent) {
      // Never frame a truncated body as complete: h2 gets RST_STREAM(INTERNAL_ERROR) with no END_STREAM
      // (Http2Stream.close() would end the writable side first, which sends END_STREAM), HTTP/1.1 loses the
      // connection before the terminating chunk.
      if (this.#h2) sink.destroy(error);
      else cutResponse(sink as ServerResponse);
      const upstream = this.#telemetry.direction === 'outbound' ? 'peer' : 'app';
      this.#telemetry.reset(
        this.#peerId,
        upstream === 'app' ? 'app_response_truncated' : 'peer_response_truncated',
        `response truncated: the ${upstream} connection failed mid-body`,
        error,
      );
      return;
    }
    if (this.#heldHead !== undefined) {
      // The peer answered (so nothing is retried), and none of its answer reached the caller: answered with the error
      // it is and counted as that, not as the held status.
      this.#heldHead = undefined;
      const rejection = cutBeforeBody(error);
      const res = sink as ServerResponse;
      writeErrorH1(res, rejection, undefined, drainCloses(this.#drain, res) || bodyStillComing(res.req));
      this.#telemetry.rejected(this.#peerId, rejection, this.#startedAt);
      return;
    }
    if (this.#hooks?.retry?.(error) === true) return;
    const rejection = this.#classify(error);
    if (this.#h2) writeErrorH2(sink as ServerHttp2Stream, rejection);
    else {
      // An answer before the request body ended leaves a connection that cannot carry another request (its rest would
      // have to be read first): say so, and node:http closes it after the answer.
      const res = sink as ServerResponse;
      writeErrorH1(res, rejection, undefined, drainCloses(this.#drain, res) || bodyStillComing(res.req));
    }
    this.#telemetry.rejected(this.#peerId, rejection, this.#startedAt);
  }

  /**
   * The downstream closed: abort the upstream exchange unless it already finished. An abort destroys the upstream
   * connection, so an upload cut by the caller reaches the app as a cut upload, never as a complete one.
   */
  /** Not started within `headTimeoutMs`: answer 504; the request is dropped when the pool would start it. */
  headTimedOut(): void {
    if (this.#done) return;
    this.onError(headTimeout());
  }

  /**
   * The sidecar answers the caller itself (its request body stalled before the app's head, H2Sink.idle): the app
   * exchange is aborted, which destroys its connection, so the app sees a cut upload and never a complete one; a
   * request still waiting for a pool connection is dropped unsent (onConnect). Nothing of the app reaches the sink.
   */
  supersede(): void {
    clearTimeout(this.#headTimer);
    clearTimeout(this.#stallTimer);
    if (this.#done) return;
    this.#done = true;
    this.#settle();
    this.#abort?.(new Error('answered by the sidecar'));
  }

  /**
   * The caller's side ended before the exchange completed, unless the sidecar reset it (already reported): a caller
   * gone, or an HTTP/2 stream nghttp2 reset with PROTOCOL_ERROR for breaking the protocol (a body that does not
   * match its content-length), which is not a caller going away.
   */
  #callerGone(): void {
    const sink = this.#sink;
    if (sink[kResetBySidecar] === true) return;
    if (this.#heldHead !== undefined) {
      // The peer had answered, its head held for the body: counted with the peer's status, as a head written is.
      this.#heldHead = undefined;
      this.#telemetry.completed(this.#peerId, this.#heldStatus, this.#startedAt, this.#heldAt);
    }
    if (this.#h2 && (sink as ServerHttp2Stream).rstCode === h2constants.NGHTTP2_PROTOCOL_ERROR) {
      this.#telemetry.protocolReset(this.#peerId);
    } else {
      this.#telemetry.aborted(this.#peerId);
    }
  }

  sinkClosed(): void {
    clearTimeout(this.#headTimer);
    clearTimeout(this.#stallTimer);
    if (!this.#done && this.#abort !== undefined) {
      this.#done = true;
      this.#abort(new Error('downstream closed'));
      this.#callerGone();
    }
  }

  sinkDrained(): void {
    clearTimeout(this.#stallTimer);
    this.#stallTimer = undefined;
    // Not from inside this call: node:http emits a response's 'drain' from inside a write to the response pipelined
    // behind it, which may be another exchange's onData, inside its undici parser; resuming a parser there runs one
    // parser inside another, and undici's assertion against that destroys a connection (a response cut).
    if (this.#resume !== undefined) queueMicrotask(this.#resume);
  }

  /** The caller read nothing for stallTimeoutMs while a write waited: reset it, never framed as complete. */
  stalled(): void {
    this.#stallTimer = undefined;
    if (this.#done) return;
    const sink = this.#sink;
    sink[kResetBySidecar] = true;
    if (this.#h2) sink.destroy(new Error('caller stopped reading'));
    else cutResponse(sink as ServerResponse);
    this.#telemetry.idleStream();
  }

  #settle(): void {
    const settled = this.#hooks?.settled;
    if (settled === undefined || this.#settled) return;
    this.#settled = true;
    settled();
  }
}

function onHeadTimeout(handler: ForwardHandler): void {
  handler.headTimedOut();
}

function onSinkClose(this: Sink): void {
  this[kHandler]?.sinkClosed();
}

function onStall(handler: ForwardHandler): void {
  handler.stalled();
}

function onSinkDrain(this: Sink): void {
  this[kHandler]?.sinkDrained();
}
