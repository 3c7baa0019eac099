// One outbound request over a peer's HTTP/2 session: the app's HTTP/1.1 request becomes an h2 stream (body piped
// with backpressure, never buffered) and the stream's response is streamed back into the ServerResponse. Errors
// before the response head become JSON error responses; after it, the response is destroyed so a truncated body
// is never framed as complete (security.md F06). Shared listeners read the exchange from a symbol slot, so a
// request allocates no closures.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type ClientHttp2Session, type ClientHttp2Stream, constants, type IncomingHttpHeaders } from 'node:http2';
import { MeshauthError } from '../../errors/index.js';
import type { DataPlaneTelemetry } from '../data-plane-telemetry.js';
import { writeErrorH1 } from '../error-response.js';
import type { DrainState, ErrorClassifier } from '../forward-handler.js';

const kExchange = Symbol('meshauth.h2Exchange');
type Slot<T> = T & { [kExchange]?: H2Exchange | undefined };

export interface H2ExchangeContext {
  readonly telemetry: DataPlaneTelemetry;
  readonly classify: ErrorClassifier;
  readonly drain: DrainState;
  /** Idle limit of the stream (no header or body activity), answered with 504. */
  readonly timeoutMs: number;
}

export class H2Exchange {
  readonly #res: Slot<ServerResponse>;
  readonly #peerId: string;
  readonly #startedAt: number;
  readonly #context: H2ExchangeContext;
  #stream: Slot<ClientHttp2Stream> | undefined;
  #error: Error | undefined;
  #done = false;

  constructor(res: ServerResponse, peerId: string, startedAt: number, context: H2ExchangeContext) {
    this.#res = res;
    this.#peerId = peerId;
    this.#startedAt = startedAt;
    this.#context = context;
  }

  /** Opens the stream; `headers` is the flat list to send (`host` becomes `:authority`). */
  start(
    session: ClientHttp2Session,
    method: string,
    path: string,
    headers: readonly string[],
    body: IncomingMessage | null,
  ): void {
    const res = this.#res;
    if (res.destroyed) return;
    let stream: Slot<ClientHttp2Stream>;
    try {
      stream = session.request(requestHeaders(method, path, headers), { endStream: body === null });
    } catch (error) {
      this.fail(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    this.#stream = stream;
    stream[kExchange] = this;
    res[kExchange] = this;
    stream.on('response', onResponse);
    stream.once('end', onEnd);
    stream.on('error', onError);
    stream.once('close', onStreamClose);
    stream.setTimeout(this.#context.timeoutMs, onTimeout);
    res.once('close', onResClose);
    if (body !== null) body.pipe(stream);
  }

  /** The request could not start (connection failed, session gone): answer with the classified error. */
  fail(error: Error): void {
    if (this.#done) return;
    this.#done = true;
    const res = this.#res;
    if (res.destroyed || res.writableEnded) return;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const rejection = this.#context.classify(error);
    writeErrorH1(res, rejection, undefined, this.#context.drain.draining);
    this.#context.telemetry.rejected(this.#peerId, rejection, this.#startedAt);
  }

  response(headers: IncomingHttpHeaders): void {
    const status = Number(headers[':status']);
    const out: string[] = [];
    for (const name in headers) {
      if (name.charCodeAt(0) === 0x3a /* : */) continue;
      const value = headers[name];
      if (typeof value === 'string') out.push(name, value);
      else if (Array.isArray(value)) for (const v of value) out.push(name, v);
    }
    if (this.#context.drain.draining) out.push('connection', 'close'); // SIGTERM drain: no further keep-alive
    try {
      this.#res.writeHead(status, out);
    } catch (cause) {
      // A status or header value node:http refuses to send (ERR_INVALID_CHAR…): the peer's answer is unusable.
      this.#stream?.close(constants.NGHTTP2_CANCEL);
      this.fail(
        Object.assign(new Error('peer sent an unusable response head', { cause }), { code: 'ERR_HTTP2_PROTOCOL' }),
      );
      return;
    }
    this.#context.telemetry.completed(this.#peerId, status, this.#startedAt);
    // Only now: node:http2 emits 'response' on the next tick, so DATA read in the same chunk as HEADERS would
    // otherwise reach the response before its head. Until then the body waits in the stream's buffer.
    this.#stream?.on('data', onData);
  }

  data(chunk: Buffer): void {
    if (!this.#res.write(chunk)) {
      this.#stream?.pause();
      this.#res.once('drain', onResDrain);
    }
  }

  end(): void {
    if (!this.#res.headersSent) {
      this.fail(Object.assign(new Error('stream ended without a response'), { code: 'ERR_HTTP2_PROTOCOL' }));
      return;
    }
    this.#done = true;
    this.#res.end();
  }

  error(error: Error): void {
    this.#error ??= error;
  }

  timedOut(): void {
    this.#error ??= Object.assign(new Error('peer did not answer in time'), { code: 'UND_ERR_HEADERS_TIMEOUT' });
    this.#stream?.close(constants.NGHTTP2_CANCEL);
  }

  /** The stream closed: if the response did not complete, answer (or cut) it. */
  streamClosed(): void {
    const stream = this.#stream;
    // node:http2 frees a stream's native handle through a weak callback, so the stream object outlives its
    // request by a GC cycle or two; cutting its link to the exchange keeps the response and request objects
    // from being promoted with it (measured: ~2.5 KB per request promoted, multi-ms scavenges, docs/performance.md).
    if (stream !== undefined) stream[kExchange] = undefined;
    if (this.#done) return;
    const error =
      this.#error ??
      new MeshauthError('MESHAUTH_ERR_PEER_UNAVAILABLE', `peer reset the stream (code ${stream?.rstCode ?? '?'})`, {
        reason: 'reset',
      });
    this.fail(error);
  }

  /** The caller went away: cancel the stream unless it already finished. */
  resClosed(): void {
    if (this.#done) return;
    this.#done = true;
    const stream = this.#stream;
    if (stream !== undefined && !stream.closed) stream.close(constants.NGHTTP2_CANCEL);
  }

  resDrained(): void {
    this.#stream?.resume();
  }
}

/** HTTP/2 request headers from the flat HTTP/1 list: lower-case names, `host` as `:authority`. */
function requestHeaders(method: string, path: string, flat: readonly string[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = { ':method': method, ':path': path, ':scheme': 'https' };
  for (let i = 0; i < flat.length; i += 2) {
    const name = (flat[i] as string).toLowerCase();
    const value = flat[i + 1] as string;
    if (name === 'host') {
      out[':authority'] = value;
      continue;
    }
    const existing = out[name];
    if (existing === undefined) out[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else out[name] = [existing, value];
  }
  return out;
}

function onResponse(this: Slot<ClientHttp2Stream>, headers: IncomingHttpHeaders): void {
  this[kExchange]?.response(headers);
}

function onData(this: Slot<ClientHttp2Stream>, chunk: Buffer): void {
  this[kExchange]?.data(chunk);
}

function onEnd(this: Slot<ClientHttp2Stream>): void {
  this[kExchange]?.end();
}

function onError(this: Slot<ClientHttp2Stream>, error: Error): void {
  this[kExchange]?.error(error);
}

function onTimeout(this: Slot<ClientHttp2Stream>): void {
  this[kExchange]?.timedOut();
}

function onStreamClose(this: Slot<ClientHttp2Stream>): void {
  this[kExchange]?.streamClosed();
}

function onResClose(this: Slot<ServerResponse>): void {
  this[kExchange]?.resClosed();
}

function onResDrain(this: Slot<ServerResponse>): void {
  this[kExchange]?.resDrained();
}
