// The inbound's HTTP/1.1 client to the local app: a bounded set of keep-alive connections, one request at a time on
// each (no pipelining), requests beyond the bound queued in arrival order. A request head is serialized once into
// one string and written with one call; the response is read by Node's own llhttp (node-internals.ts AppParser),
// strict, never by a parser of ours. It replaces undici's Pool on this hop because undici's per-request machinery
// (Request objects, its dispatcher queue, its wasm parser bindings) was the largest user-land item of the
// inbound's profile (docs/performance.md, Round 4).
//
// What it guarantees, as the pool did: nothing is framed as complete unless it was (an upload cut by the caller
// destroys the app connection before the terminating chunk; a response the app cuts, or whose length does not
// match, is reported as an error after the head, which the handler turns into a cut response); a connection is
// reused only after a complete exchange, never when the app said `Connection: close` or hinted a keep-alive
// timeout too short to reuse safely; timeouts for the connect, the response head and an idle response body; a
// bodiless GET/HEAD/OPTIONS that met a keep-alive connection the app was just closing is sent once more.
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { isMeshauthError, MeshauthError } from '../../errors/index.js';
import { AppParser, invalidHeaderValue } from '../node-internals.js';

export interface AppRequest {
  readonly method: string;
  /** origin-form target, as checked by the listener. */
  readonly path: string;
  /** Flat `[name, value, …]` list: hop-by-hop headers already removed, identity headers set. */
  readonly headers: readonly string[];
  /** The body, or null for none; sent as is with a Content-Length header, else chunked. */
  readonly body: Readable | null;
}

/** What the client reports to, in order: onConnect, then onHeaders → onData* → onComplete, or onError once. */
export interface AppResponseHandler {
  /** `abort` destroys the app connection (the caller went away); no further call follows. */
  onConnect(abort: (error?: Error) => void): void;
  /** false: stop reading until `resume` is called (backpressure). */
  onHeaders(statusCode: number, rawHeaders: readonly string[], resume: () => void): boolean;
  onData(chunk: Buffer): boolean;
  onComplete(): void;
  onError(error: Error): void;
}

export interface AppClientOptions {
  readonly host: string;
  readonly port: number;
  /** `host:port` for a request that has no Host header (the app's address, IPv6 in brackets). */
  readonly authority: string;
  /** At most this many connections to the app. */
  readonly connections: number;
  readonly connectTimeoutMs: number;
  /**
   * The app's time to answer: from the end of the request until the response head, and between two reads of the
   * response body (not while the caller is not reading). One value, so the common exchange re-arms no timer.
   */
  readonly responseTimeoutMs: number;
  /** An idle connection is not reused after this (or after what the app's Keep-Alive hint allows). */
  readonly keepAliveTimeoutMs: number;
  readonly maxHeaderBytes: number;
}

/** How much earlier than the app's Keep-Alive `timeout=` hint a connection stops being reused (as undici does). */
const KEEP_ALIVE_MARGIN_MS = 2_000;

interface Pending {
  readonly request: AppRequest;
  readonly handler: AppResponseHandler;
}

export class AppClient {
  readonly options: AppClientOptions;
  readonly #idle: AppConnection[] = [];
  readonly #queue: Pending[] = [];
  #open = 0;
  #busy = 0;
  #closing = false;
  #onIdle: (() => void) | undefined;

  constructor(options: AppClientOptions) {
    this.options = options;
  }

  dispatch(request: AppRequest, handler: AppResponseHandler): void {
    if (this.#closing) {
      handler.onError(appUnavailable('the sidecar is closing'));
      return;
    }
    let connection = this.#idle.pop();
    while (connection !== undefined && !connection.reusable()) {
      connection.destroy();
      connection = this.#idle.pop();
    }
    connection ??= this.#open < this.options.connections ? this.#connect() : undefined;
    if (connection === undefined) this.#queue.push({ request, handler });
    else this.#start(connection, request, handler);
  }

  /** Resolves once no request is in flight or queued; new requests are refused from now on. */
  close(): Promise<void> {
    this.#closing = true;
    for (const connection of this.#idle.splice(0)) connection.destroy();
    if (this.#busy === 0 && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#onIdle = resolve;
    });
  }

  /** Destroys every connection; requests still in flight or queued fail. */
  destroy(): void {
    this.#closing = true;
    for (const pending of this.#queue.splice(0)) pending.handler.onError(appUnavailable('the sidecar is closing'));
    for (const connection of this.#idle.splice(0)) connection.destroy();
    for (const connection of AppConnection.all(this)) connection.destroy();
  }

  #connect(): AppConnection {
    this.#open += 1;
    return new AppConnection(this);
  }

  #start(connection: AppConnection, request: AppRequest, handler: AppResponseHandler): void {
    this.#busy += 1;
    connection.start(request, handler);
  }

  /** A connection finished its exchange and may be reused. */
  released(connection: AppConnection): void {
    this.#busy -= 1;
    const next = this.#queue.shift();
    if (next !== undefined) {
      this.#start(connection, next.request, next.handler);
      return;
    }
    if (this.#closing) {
      connection.destroy();
      this.#settle();
      return;
    }
    this.#idle.push(connection);
  }

  /** A connection closed (after its exchange, or failing it). */
  closed(connection: AppConnection, wasBusy: boolean, retry: Pending | undefined): void {
    this.#open -= 1;
    if (wasBusy) this.#busy -= 1;
    const at = this.#idle.indexOf(connection);
    if (at !== -1) this.#idle.splice(at, 1);
    if (retry !== undefined) this.#queue.unshift(retry); // first in line, on a new connection
    const next = this.#queue.shift();
    if (next !== undefined) this.#start(this.#connect(), next.request, next.handler);
    this.#settle();
  }

  #settle(): void {
    if (this.#closing && this.#busy === 0 && this.#queue.length === 0) this.#onIdle?.();
  }
}

const kConnections = new WeakMap<AppClient, Set<AppConnection>>();

/** One keep-alive connection to the app and its response parser. Callbacks are bound once per connection. */
class AppConnection {
  static all(client: AppClient): AppConnection[] {
    return [...(kConnections.get(client) ?? [])];
  }

  readonly #client: AppClient;
  readonly #socket: Socket;
  readonly #parser: AppParser;
  #connected = false;
  #handler: AppResponseHandler | undefined;
  #request: AppRequest | undefined;
  #head = false;
  #status = 0;
  #reusable = true;
  #idleTimeoutMs: number;
  /** performance.now() when the connection went idle. */
  #idleSince = 0;
  #requestSent = false;
  #responseDone = false;
  #bodyBytesLeft = -1;
  #chunked = false;
  #closed = false;
  /** Exchanges started on this connection; the current one runs on a reused connection when it is not the first. */
  #exchanges = 0;
  #reused = false;
  /** Any byte of a response to the current request arrived. */
  #responseBytes = false;
  /** The request to send again on a new connection once this one has closed (see #retryable). */
  #retry: Pending | undefined;
  /** Holds a request from start() until released or closed (the client's in-flight count). */
  #busy = false;
  /** Bytes of a response nobody asked for arrived: the connection is closed once the current parse returns. */
  #stray = false;
  #error: Error | undefined;

  constructor(client: AppClient) {
    this.#client = client;
    const options = client.options;
    this.#idleTimeoutMs = options.keepAliveTimeoutMs;
    let set = kConnections.get(client);
    if (set === undefined) {
      set = new Set();
      kConnections.set(client, set);
    }
    set.add(this);
    this.#parser = new AppParser(options.maxHeaderBytes, {
      begin: () => this.#onBegin(),
      headers: (status, headers, keepAlive) => this.#onHeaders(status, headers, keepAlive),
      body: (chunk) => this.#onBody(chunk),
      complete: () => this.#onComplete(),
    });
    const socket = connect({ host: options.host, port: options.port, noDelay: true });
    this.#socket = socket;
    socket.setTimeout(options.connectTimeoutMs);
    socket.on('connect', () => this.#onConnect());
    socket.on('data', (data: Buffer) => this.#onData(data));
    socket.on('end', () => this.#onEnd());
    socket.on('timeout', () => this.#onTimeout());
    socket.on('error', (error: Error) => {
      this.#error ??= error;
    });
    socket.on('close', () => this.#onClose());
    socket.on('drain', this.#resumeBody);
  }

  start(request: AppRequest, handler: AppResponseHandler): void {
    this.#reused = this.#exchanges > 0;
    this.#exchanges += 1;
    this.#responseBytes = false;
    this.#busy = true;
    this.#request = request;
    this.#handler = handler;
    this.#head = false;
    this.#status = 0;
    this.#requestSent = false;
    this.#responseDone = false;
    handler.onConnect(this.#abort);
    if (this.#handler === undefined) return; // aborted at once
    if (this.#connected) this.#send();
  }

  /**
   * Still open, and idle for no longer than it may be reused (past that the app may be closing it right now). A
   * connection being destroyed stays in the idle list until its 'close': it must not be handed out meanwhile.
   */
  reusable(): boolean {
    return !this.#socket.destroyed && performance.now() - this.#idleSince <= this.#idleTimeoutMs;
  }

  destroy(error?: Error): void {
    if (error !== undefined) this.#error ??= error;
    this.#socket.destroy();
  }

  readonly #abort = (error?: Error): void => {
    // The handler gave up (the caller went away): nothing more is reported to it.
    this.#handler = undefined;
    this.#detachBody();
    this.destroy(error ?? new Error('request aborted'));
  };

  readonly #resume = (): void => {
    if (this.#closed) return;
    this.#socket.setTimeout(this.#client.options.responseTimeoutMs);
    this.#socket.resume();
  };

  #onConnect(): void {
    this.#connected = true;
    this.#socket.setTimeout(this.#client.options.responseTimeoutMs);
    if (this.#handler !== undefined) this.#send();
  }

  #send(): void {
    const request = this.#request as AppRequest;
    const socket = this.#socket;
    const { headers, body } = request;
    let head = `${request.method} ${request.path} HTTP/1.1\r\n`;
    let host = false;
    let length = -1;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i] as string;
      const value = headers[i + 1] as string;
      if (invalidHeaderValue(value)) {
        this.#fail(appProtocol(`request header ${name} has a value that cannot be sent`));
        return;
      }
      if (name.length === 4 && name.toLowerCase() === 'host') host = true;
      else if (name.length === 14 && name.toLowerCase() === 'content-length') length = Number(value);
      head += `${name}: ${value}\r\n`;
    }
    if (!host) head += `host: ${this.#client.options.authority}\r\n`;
    if (body === null) {
      socket.write(`${head}\r\n`, 'latin1');
      this.#sent();
      return;
    }
    // While the caller uploads, a stalled upload is the caller's stream idle timer's business, not the app's.
    socket.setTimeout(0);
    this.#chunked = length < 0;
    this.#bodyBytesLeft = length;
    // Chunked: each chunk is written as CRLF, size, CRLF, data (the first CRLF ends the head), so a body cut
    // mid-way ends exactly after the data the caller sent, never with a framing byte that looks like more.
    socket.write(this.#chunked ? `${head}transfer-encoding: chunked\r\n` : `${head}\r\n`, 'latin1');
    body.on('data', this.#onBodyData);
    body.on('end', this.#onBodyEnd);
    body.on('close', this.#onBodyClose);
    body.on('error', ignore); // 'close' without 'end' says the upload was cut
    body.resume();
  }

  readonly #onBodyData = (chunk: Buffer): void => {
    const socket = this.#socket;
    let written: boolean;
    if (this.#chunked) {
      if (chunk.length === 0) return;
      socket.cork();
      socket.write(`\r\n${chunk.length.toString(16)}\r\n`, 'latin1');
      written = socket.write(chunk);
      socket.uncork();
    } else {
      this.#bodyBytesLeft -= chunk.length;
      if (this.#bodyBytesLeft < 0) {
        this.#bodyCut(appUnavailable('request body longer than its content-length'));
        return;
      }
      written = socket.write(chunk);
    }
    if (!written) this.#request?.body?.pause();
  };

  readonly #onBodyEnd = (): void => {
    const body = this.#request?.body as (Readable & { complete?: boolean }) | undefined;
    // node:http can end a request whose chunked body never finished (its connection ended mid-body).
    if (body?.complete === false || (!this.#chunked && this.#bodyBytesLeft > 0)) {
      this.#bodyCut(appUnavailable('request body incomplete'));
      return;
    }
    this.#detachBody();
    if (this.#chunked) this.#socket.write('\r\n0\r\n\r\n', 'latin1');
    this.#sent();
    if (this.#responseDone && this.#busy) this.#finish();
  };

  /** The whole request is written: the app's time to answer starts now (as with the pool before). */
  #sent(): void {
    this.#requestSent = true;
    if (this.#request?.body !== null) this.#socket.setTimeout(this.#client.options.responseTimeoutMs);
  }

  readonly #onBodyClose = (): void => {
    if (!this.#requestSent) this.#bodyCut(appUnavailable('request body cut by the caller'));
  };

  readonly #resumeBody = (): void => {
    if (!this.#requestSent) this.#request?.body?.resume();
  };

  /** The caller's upload ended early: the app must see a cut connection, never a complete request. */
  #bodyCut(error: Error): void {
    this.#detachBody();
    this.#fail(error);
  }

  #detachBody(): void {
    const body = this.#request?.body;
    if (body === null || body === undefined) return;
    body.off('data', this.#onBodyData);
    body.off('end', this.#onBodyEnd);
    body.off('close', this.#onBodyClose);
  }

  #onData(data: Buffer): void {
    if (this.#handler === undefined || this.#responseDone) {
      // Bytes the app sent with no request outstanding (or past a complete response): the connection is unusable.
      this.destroy();
      return;
    }
    this.#responseBytes = true;
    const failed = this.#parser.execute(data);
    if (failed !== undefined) this.#fail(failed);
    else if (this.#stray) this.#fail(appProtocol('app sent a response nobody asked for'));
    // Reused only after the parse returned, so a queued request never starts inside a parser callback.
    else if (this.#responseDone && this.#requestSent && this.#busy) this.#finish();
  }

  #onBegin(): void {
    if (this.#responseDone || this.#handler === undefined) this.#stray = true;
  }

  #onHeaders(status: number, headers: string[], keepAlive: boolean): boolean {
    if (status < 200) {
      // 100/103 are skipped, as the pool did; an upgrade was never asked for.
      if (status === 101) this.#fail(appProtocol('app switched protocols without being asked'));
      return false;
    }
    this.#head = true;
    this.#status = status;
    if (!keepAlive) this.#reusable = false;
    else this.#keepAliveHint(headers);
    const handler = this.#handler;
    if (handler === undefined) return false;
    if (!handler.onHeaders(status, headers, this.#resume)) this.#pause();
    return this.#request?.method === 'HEAD';
  }

  #keepAliveHint(headers: readonly string[]): void {
    this.#idleTimeoutMs = this.#client.options.keepAliveTimeoutMs;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i] as string;
      if (name.length !== 10 || name.toLowerCase() !== 'keep-alive') continue;
      const match = /timeout=(\d+)/i.exec(headers[i + 1] as string);
      if (match === null) return;
      const hinted = Number(match[1]) * 1000 - KEEP_ALIVE_MARGIN_MS;
      if (hinted <= 0) this.#reusable = false;
      else this.#idleTimeoutMs = Math.min(hinted, this.#client.options.keepAliveTimeoutMs);
      return;
    }
  }

  #onBody(chunk: Buffer): void {
    const handler = this.#handler;
    if (handler !== undefined && !handler.onData(chunk)) this.#pause();
  }

  #pause(): void {
    // The caller is not reading: the body timeout is the caller's business (its stream idle timer), not the app's.
    this.#socket.setTimeout(0);
    this.#socket.pause();
  }

  #onComplete(): void {
    if (this.#status < 200) return; // an informational response; the real one follows
    this.#responseDone = true;
    const handler = this.#handler;
    this.#handler = undefined;
    if (!this.#requestSent) {
      // The app answered before the upload ended: the rest is not sent and the connection not reused.
      this.#reusable = false;
      this.#detachBody();
      this.#requestSent = true;
    }
    handler?.onComplete();
  }

  /** The exchange is over (response complete, request sent): reuse the connection or close it. */
  #finish(): void {
    this.#request = undefined;
    if (!this.#reusable || this.#closed || this.#stray) {
      this.destroy();
      return;
    }
    this.#busy = false;
    this.#idleSince = performance.now();
    this.#client.released(this);
  }

  #onEnd(): void {
    if (this.#handler === undefined) {
      this.destroy();
      return;
    }
    // A body delimited by the end of the connection completes here; a shorter one than announced fails here.
    this.#reusable = false;
    const failed = this.#parser.finish();
    if (this.#handler !== undefined) this.#fail(failed ?? appUnavailable('app closed the connection'));
    else this.destroy();
  }

  #onTimeout(): void {
    if (this.#handler === undefined) {
      this.destroy(); // an idle keep-alive connection, or a connect nobody waits for any more
      return;
    }
    this.#fail(
      this.#head
        ? appTimeout('app stopped sending its response body')
        : appTimeout(this.#connected ? 'app did not answer in time' : 'app connect timed out'),
    );
  }

  #fail(error: Error): void {
    const handler = this.#handler;
    if (handler !== undefined && this.#retryable(error)) {
      this.#retry = { request: this.#request as AppRequest, handler };
      this.#handler = undefined;
      this.destroy(error);
      return;
    }
    this.#handler = undefined;
    this.#detachBody();
    this.destroy(error);
    handler?.onError(error);
  }

  /**
   * A keep-alive connection the app closed just as the request was written on it (its FIN or RST was on the way):
   * a request without a body, of a method that is safe to repeat (RFC 9110 §9.2.2), that got no byte of a response
   * is sent again, once, on a new connection. Nothing else is repeated.
   */
  #retryable(error: Error | undefined): boolean {
    const request = this.#request;
    if (!this.#reused || this.#responseBytes || request === undefined || request.body !== null) return false;
    if (isMeshauthError(error) && error.code === 'MESHAUTH_ERR_UPSTREAM_TIMEOUT') return false;
    const method = request.method;
    return method === 'GET' || method === 'HEAD' || method === 'OPTIONS';
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    kConnections.get(this.#client)?.delete(this);
    let handler = this.#handler;
    let retry = this.#retry;
    if (handler !== undefined && this.#retryable(this.#error)) {
      retry = { request: this.#request as AppRequest, handler };
      handler = undefined;
    }
    const busy = this.#busy;
    this.#busy = false;
    this.#handler = undefined;
    this.#retry = undefined;
    this.#detachBody();
    this.#request = undefined;
    this.#parser.close();
    this.#client.closed(this, busy, retry);
    handler?.onError(this.#error ?? appUnavailable('app closed the connection'));
  }
}

function appTimeout(message: string): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_UPSTREAM_TIMEOUT', message, { reason: 'timeout' });
}

function appProtocol(message: string): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_UPSTREAM_PROTOCOL', message, { reason: 'protocol' });
}

function appUnavailable(message: string): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_UPSTREAM_UNAVAILABLE', message, { reason: 'connect' });
}

function ignore(): void {}
