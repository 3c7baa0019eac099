// The sidecar's HTTP/1.1 client, for both HTTP/1.1 hops: the inbound's to the local app (TCP) and the outbound's to a
// peer that speaks HTTP/1.1 (mTLS connections the endpoint dials and verifies). It stands in for undici's Pool: a
// bounded set of kept-alive connections, each carrying one caller's requests (Http1Request.key), with waiting in
// arrival order beyond it, each answer parsed by Node's own llhttp and fed to an undici DispatchHandler with undici's
// error codes (so ForwardHandler and the classifiers serve both hops), head and body timeouts, the server's
// `Keep-Alive: timeout` honoured, nothing retried but what the server provably never read (retryStale), an early
// answer or a caller's abort ending its connection (another is opened only for a request that waits). One write per
// request head; a connection is reused only once the parser is done with the bytes of its answer, never after an
// answer out of turn for a while (strayAnswer). Whom it talks to is never its choice: the options or the connector.
import { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { clearInterval, clearTimeout, setImmediate, setInterval, setTimeout } from 'node:timers';
import type { Dispatcher } from 'undici';
import { formatHostPort } from '../config/index.js';
import { MAX_TIMER_MS, UNDICI_CODES } from '../platform/index.js';
import { HTTPParser, type LlhttpParser, llhttpParser, releaseParser } from '../platform/llhttp.js';

/** The largest answer head (node:http's default, as undici's pools took it). */
const MAX_RESPONSE_HEAD_BYTES = 16 * 1024;
/**
 * The most header fields an answer may have (node:http's maxHeadersCount). Short fields fit thousands into 16 KiB,
 * and an HTTP/2 hop downstream takes 2,048 (the outbound's session limit): past it the sidecar answers 502 here,
 * as a malformed answer, instead of passing on a head the next hop resets (503, which reads as safe to retry).
 */
const MAX_RESPONSE_FIELDS = 2_000;
/** A kept connection is retired this long before the idle time its server announced runs out (as undici does). */
const KEEP_ALIVE_MARGIN_MS = 2_000;
/**
 * How often idle connections past their time are closed, while there are idle connections: a client without any
 * sets no timer (an idle sidecar's wake-ups are most of what it costs).
 */
const IDLE_SWEEP_MS = 1_000;
/**
 * After a server sent an answer no request asked for, no connection to it is reused for this long. HTTP/1.1 answers
 * carry no request id: a stray answer that arrives once the next request is on the connection is taken as that
 * request's answer, and every later answer on it is one request late, another caller's, for as long as requests keep
 * coming. The stray is only seen when it lands on a connection with nothing outstanding; from then on every request
 * gets a connection of its own, so a server that does it once (a handler that answers twice, or answers a POST without
 * reading its body, which it then reads as a request) cannot shift answers again for a while.
 */
export const STRAY_ANSWER_NO_REUSE_MS = 60_000;

interface Http1Limits {
  readonly maxConnections: number;
  /** The wait for an answer's head from the write, and the longest pause between two of its body chunks. */
  readonly timeoutMs: number;
  /** How long a connection may idle between two requests when its server announces no shorter time. */
  readonly keepAliveMs: number;
  /** The server sent an answer no request asked for (counted and logged by the owner; reuse stops for a while). */
  readonly onStrayAnswer?: (() => void) | undefined;
  /**
   * A bodiless GET, HEAD or OPTIONS whose kept connection the server closed before any byte of an answer goes once
   * more, on another connection (the app hop: an app's idle close racing the request). Off where the owner retries
   * itself (the mesh hop's exchange).
   */
  readonly retryStale?: boolean | undefined;
}

/** Requests sent once more after a stale connection (retryStale): never a third time. */
const retriedStale = new WeakSet<Http1Request>();
const IDEMPOTENT_WITHOUT_BODY = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Plain TCP connections to `host:port`, each bounded by connectTimeoutMs (the app hop). */
export interface Http1TcpOptions extends Http1Limits {
  readonly host: string;
  readonly port: number;
  readonly connectTimeoutMs: number;
}

/** Connections the caller opens (the mesh hop's mTLS dial). */
export interface Http1ConnectorOptions extends Http1Limits {
  /** `host:port` (`[v6]:port`) of the origin: the Host of a request that arrived without one. */
  readonly authority: string;
  /**
   * Opens one connection for the request that needs it: resolves once the socket is connected (and, for TLS,
   * verified), so no 'connect' follows; it bounds its own wait. A rejection reaches that request's onError as the
   * very same error (its type tells the caller no request byte was written), and the next waiting request dials anew.
   */
  readonly connect: () => Promise<Socket>;
}

export type Http1ClientOptions = Http1TcpOptions | Http1ConnectorOptions;

export interface Http1Request {
  readonly method: string;
  readonly path: string;
  /** Flat `[name, value, …]`, as a listener's parser admitted them (no CR, LF or NUL can be in them). */
  readonly headers: readonly string[];
  /**
   * The request body, streamed with backpressure (chunked when the headers state no Content-Length), or null. One
   * that fails or is destroyed before its end cuts the connection: the server never reads a cut body as complete.
   */
  readonly body: Readable | null;
  /**
   * Whose request it is (the app hop: the caller's SPIFFE ID, or the end user on the external listener). A kept
   * connection carries requests of one key only: HTTP/1.1 answers carry no request id, and an app that answers out of
   * turn (twice, or a body it never read taken for a request) hands the answers on that connection to the requests
   * after it. Kept apart, those are the same caller's, never another workload's. Absent: one key for all (the mesh hop,
   * whose requests all come from the one local app).
   */
  readonly key?: string | undefined;
}

interface Waiting {
  readonly request: Http1Request;
  readonly handler: Dispatcher.DispatchHandler;
}

function failure(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

function closedError(): Error {
  return failure('the HTTP/1.1 client is closed', 'UND_ERR_CLOSED');
}

export class Http1Client {
  readonly options: Http1ClientOptions;
  /** `host:port` for a request that arrived without a Host (HTTP/1.0). */
  readonly authority: string;
  readonly #idle: Http1Connection[] = [];
  readonly #waiting: Waiting[] = [];
  readonly #all = new Set<Http1Connection>();
  #sweep: NodeJS.Timeout | undefined;
  /** Connections settling after an answer (neither idle nor busy). */
  #settling = 0;
  /** Connections the connector is opening (each for the request that asked for it), within maxConnections. */
  #dialing = 0;
  /**
   * The earliest deadline close() was given; the promise every close() returns (set: closing, no request is taken);
   * its resolve once nothing is open.
   */
  #deadline = Number.POSITIVE_INFINITY;
  #closeTimer: NodeJS.Timeout | undefined;
  #whenClosed: Promise<void> | undefined;
  #closed: (() => void) | undefined;
  /** Past close()'s deadline: a dial that completes now is closed at once. */
  #shut = false;
  /** Connections closed to free a place for a waiting request of another key, not yet gone. */
  readonly #freeing = new Set<Http1Connection>();
  /** performance.now() until which no connection is reused (STRAY_ANSWER_NO_REUSE_MS); 0: reuse. */
  #noReuseUntil = 0;

  constructor(options: Http1ClientOptions) {
    this.options = options;
    this.authority = 'connect' in options ? options.authority : formatHostPort(options);
  }

  /** Connections open or connecting (at most maxConnections). */
  get open(): number {
    return this.#all.size + this.#dialing;
  }

  dispatch(request: Http1Request, handler: Dispatcher.DispatchHandler): void {
    if (this.#whenClosed !== undefined) {
      handler.onError?.(closedError());
      return;
    }
    const idle = this.#idleFor(request.key ?? '');
    if (idle !== undefined) {
      if (!idle.send(request, handler)) this.released(idle);
      return;
    }
    // A connection whose answer just ended takes one request once it has settled (undici's client queues one on it);
    // beyond one waiting request per settling connection, a new connection is opened while the bound allows.
    if (this.#waiting.length >= this.#settling && this.open < this.options.maxConnections) {
      this.#connect(request, handler);
      return;
    }
    this.#waiting.push({ request, handler });
    // All places taken, one of them idle with another key's connection: it makes room for a connection of this key.
    if (this.#idle.length > 0 && this.#waiting.length > this.#settling + this.#freeing.size) {
      const evicted = this.#idle.shift() as Http1Connection;
      this.#freeing.add(evicted);
      evicted.destroy();
    }
  }

  /** The most recent usable idle connection of `key`, taken out of the idle list; unusable ones are closed. */
  #idleFor(key: string): Http1Connection | undefined {
    const now = performance.now();
    const idle = this.#idle;
    for (let i = idle.length - 1; i >= 0; i--) {
      const connection = idle[i] as Http1Connection;
      if (!connection.usableAt(now)) {
        idle.splice(i, 1);
        connection.destroy();
      } else if (connection.key === key) {
        // The common case, one caller or the last one's again, takes the top without splice's array.
        if (i === idle.length - 1) idle.pop();
        else idle.splice(i, 1);
        return connection;
      }
    }
    return undefined;
  }

  /** `connection` finished its exchange and may carry another (a loop, not a recursion, past dropped requests). */
  released(connection: Http1Connection): void {
    if (this.#noReuseUntil !== 0 && this.#reuseStopped()) {
      connection.destroy(); // its place goes to the oldest waiting request, on a connection of its own (gone)
      return;
    }
    const waiting = this.#waiting;
    for (;;) {
      // Requests of other keys that came before this key's first waiting one get a connection of their own in turn:
      // a new one while the bound allows, else this one's place (gone), unless enough places are being freed for
      // them already (several connections can come back in one tick while one of them waits).
      let first = 0;
      while (first < waiting.length && ((waiting[first] as Waiting).request.key ?? '') !== connection.key) first++;
      if (first > 0) {
        if (this.open < this.options.maxConnections) {
          const next = waiting.shift() as Waiting;
          this.#connect(next.request, next.handler);
          continue;
        }
        if (this.#freeing.size < first) {
          this.#freeing.add(connection);
          connection.destroy();
          return;
        }
      }
      if (first === waiting.length) break;
      const [next] = waiting.splice(first, 1) as [Waiting];
      if (connection.send(next.request, next.handler)) return;
    }
    if (this.#whenClosed !== undefined) connection.destroy();
    else {
      this.#idle.push(connection);
      if (this.#sweep === undefined) {
        this.#sweep = setInterval(() => this.#closeExpired(), IDLE_SWEEP_MS);
        this.#sweep.unref();
      }
    }
  }

  /**
   * A connection got bytes no request asked for (the connection itself is destroyed): the owner is told, and no
   * connection is reused for a while, the idle ones included (they may hold the next stray).
   */
  strayAnswer(): void {
    this.#noReuseUntil = performance.now() + STRAY_ANSWER_NO_REUSE_MS;
    for (const connection of this.#idle.splice(0)) connection.destroy();
    this.options.onStrayAnswer?.();
  }

  #reuseStopped(): boolean {
    if (performance.now() < this.#noReuseUntil) return true;
    this.#noReuseUntil = 0;
    return false;
  }

  /** `connection`'s answer ended; it is held back until it has settled (Http1Connection.#settle). */
  settling(change: 1 | -1): void {
    this.#settling += change;
  }

  /** `connection` closed: its place goes to the oldest waiting request. */
  gone(connection: Http1Connection): void {
    this.#all.delete(connection);
    this.#freeing.delete(connection);
    const at = this.#idle.indexOf(connection);
    if (at !== -1) this.#idle.splice(at, 1);
    this.#placeFreed();
  }

  /**
   * Takes no more requests; those in flight or waiting may finish until `deadline` (ms since epoch), then every
   * connection is destroyed and what still waits fails. Called again, the earlier deadline holds.
   */
  close(deadline: number): Promise<void> {
    this.#deadline = Math.min(this.#deadline, deadline);
    if (this.#whenClosed === undefined) {
      this.#stopSweep();
      for (const connection of this.#idle.splice(0)) connection.destroy();
      this.#whenClosed = new Promise<void>((resolve) => {
        this.#closed = resolve;
      }).then(() => this.#shutNow());
      if (this.open === 0) this.#closed?.();
    }
    this.#armDeadline();
    return this.#whenClosed;
  }

  /** Opens a connection for `request` (the caller checked the bound). */
  #connect(request: Http1Request, handler: Dispatcher.DispatchHandler): void {
    const options = this.options;
    if (!('connect' in options)) {
      const socket = connect({ host: options.host, port: options.port, noDelay: true });
      const connection = new Http1Connection(this, socket, options.connectTimeoutMs);
      this.#all.add(connection);
      connection.send(request, handler);
      return;
    }
    // The request is handed over only once its connection is ready: its handler's onConnect then sees the peer it
    // is written to, and a failed dial leaves its body untouched (a retry may send it again).
    this.#dialing += 1;
    options.connect().then(
      (socket) => this.#dialed(socket, request, handler),
      (error: unknown) => this.#notDialed(error instanceof Error ? error : new Error(String(error)), handler),
    );
  }

  #dialed(socket: Socket, request: Http1Request, handler: Dispatcher.DispatchHandler): void {
    if (this.#shut || socket.destroyed) {
      // Too late for the close() deadline, or gone already (its 'close' may have been emitted): never written to.
      socket.destroy();
      this.#notDialed(this.#shut ? closedError() : failure('other side closed', 'UND_ERR_SOCKET'), handler);
      return;
    }
    this.#dialing -= 1;
    const connection = new Http1Connection(this, socket, undefined);
    this.#all.add(connection);
    try {
      if (!connection.send(request, handler)) this.released(connection);
    } catch {
      // A handler threw as it took its request (outside any caller's stack here): that exchange fails, not the
      // process, and the connection is not trusted further.
      connection.destroy();
    }
  }

  #notDialed(error: Error, handler: Dispatcher.DispatchHandler): void {
    this.#dialing -= 1;
    try {
      handler.onError?.(error);
    } catch {
      // Nothing more to fail: the exchange had only this request.
    } finally {
      this.#placeFreed();
    }
  }

  /** A connection closed or a dial ended without one: the oldest waiting request gets a connection of its own. */
  #placeFreed(): void {
    const next = this.#waiting.shift();
    // On a connection still connecting, a request dropped unsent leaves it to the next one (#onConnect).
    if (next !== undefined) this.#connect(next.request, next.handler);
    else if (this.open === 0) this.#closed?.();
  }

  /** One timer holds at most MAX_TIMER_MS (a longer one fires at once): a later deadline is waited for in turns. */
  #armDeadline(): void {
    clearTimeout(this.#closeTimer);
    if (this.#shut) return;
    const left = this.#deadline - Date.now();
    this.#closeTimer =
      left > MAX_TIMER_MS
        ? setTimeout(() => this.#armDeadline(), MAX_TIMER_MS)
        : setTimeout(() => this.#closed?.(), Math.max(0, left));
  }

  #shutNow(): void {
    this.#shut = true;
    clearTimeout(this.#closeTimer);
    for (const waiting of this.#waiting.splice(0)) waiting.handler.onError?.(closedError());
    for (const connection of this.#all) connection.destroy();
  }

  #closeExpired(): void {
    const now = performance.now();
    for (const connection of [...this.#idle]) if (!connection.usableAt(now)) connection.destroy();
    if (this.#idle.length === 0) this.#stopSweep();
  }

  #stopSweep(): void {
    clearInterval(this.#sweep);
    this.#sweep = undefined;
  }
}

/**
 * Where a connection is: connecting (its request, if any, waits for the connect), waiting for an answer's head,
 * reading its body, paused by the caller's backpressure, or idle between requests.
 */
type Phase = 'connecting' | 'head' | 'body' | 'paused' | 'idle';

class Http1Connection {
  readonly #client: Http1Client;
  readonly #socket: Socket;
  readonly #parser: LlhttpParser;
  /** The request timeout: the wait for the head from the write, then the longest pause between body chunks. */
  readonly #timer: NodeJS.Timeout;
  readonly #connectTimer: NodeJS.Timeout | undefined;
  #phase: Phase;
  #handler: Dispatcher.DispatchHandler | undefined;
  #request: Http1Request | undefined;
  /** The key of the requests this connection carries (Http1Request.key; set by its first request). */
  key = '';
  /** Requests written on this connection, the one under way included: from the second on, it was a kept one. */
  #written = 0;
  /** A byte of the answer under way arrived. */
  #heard = false;
  /** This connection's stray answer was told to the client (once, however many places see it). */
  #strayTold = false;
  #method = '';
  /** The answer's head arrived (a final one: informational answers are skipped). */
  #answered = false;
  #keepAlive = true;
  /**
   * This exchange's answer announced a body it cannot have (a HEAD, 204 or 304 answer, or an interim one, with a
   * Content-Length or Transfer-Encoding): a server that sends that body anyway sends it after the answer, where it
   * would be the next request's. The connection is closed after the answer instead of kept.
   */
  #untrusted = false;
  #idleMs: number;
  #idleSince = 0;
  /** The answer completed inside the parse under way: the connection settles once that parse returns. */
  #releaseDue = false;
  /** The settle tick at which this connection began to settle (#settle), or -1 when it is not settling. */
  #settlingSince = -1;
  /** Header fields llhttp flushed before the head was complete (a head of more than 32 fields). */
  #fields: string[] = [];
  /** The request body still being written, and whether it goes chunked. */
  #body: Readable | null = null;
  #chunked = false;
  #gone = false;

  /**
   * `socket` still connecting, its 'connect' awaited for at most `connectTimeoutMs`; or, with no timeout, connected
   * and ready for a request (a connector's).
   */
  constructor(client: Http1Client, socket: Socket, connectTimeoutMs: number | undefined) {
    this.#client = client;
    const options = client.options;
    this.#idleMs = options.keepAliveMs;
    this.#socket = socket;
    if (connectTimeoutMs === undefined) {
      // Connected already: idle from now, should its request be dropped before it is written.
      this.#phase = 'idle';
      this.#idleSince = performance.now();
    } else {
      this.#phase = 'connecting';
      this.#connectTimer = setTimeout(onConnectTimer, connectTimeoutMs, this);
      this.#connectTimer.unref();
      socket.once('connect', () => this.#onConnect());
    }
    this.#timer = setTimeout(onTimer, options.timeoutMs, this);
    this.#timer.unref();
    const parser = llhttpParser('response', MAX_RESPONSE_HEAD_BYTES);
    // The first byte of a message with no request outstanding (after a complete answer, even in the same chunk, even
    // a head not yet whole): the connection is never kept for the next request, whose answer would complete it.
    parser[HTTPParser.kOnMessageBegin] = () => {
      if (this.#handler !== undefined) return;
      this.#stray();
      this.#socket.destroy();
    };
    parser[HTTPParser.kOnHeaders] = (fields: string[]) => {
      for (const field of fields) this.#fields.push(field);
    };
    parser[HTTPParser.kOnHeadersComplete] = (
      _major: number,
      _minor: number,
      fields: string[] | undefined,
      _method: number,
      _url: string,
      status: number,
      _message: string,
      upgrade: boolean,
      keepAlive: boolean,
    ) => this.#onHead(fields ?? this.#takeFields(), status, upgrade, keepAlive);
    parser[HTTPParser.kOnBody] = (chunk: Buffer) => this.#onBody(chunk);
    parser[HTTPParser.kOnMessageComplete] = () => this.#onAnswerEnd();
    this.#parser = parser;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('drain', () => this.#body?.resume());
    socket.on('end', () => this.#onEnd());
    socket.on('error', (error: Error) => this.#fail(error));
    socket.once('close', () => this.#onClose());
  }

  /** Idle, open, and (at `now`) inside the idle time its server allows. */
  usableAt(now: number): boolean {
    return (
      !this.#gone &&
      !this.#socket.destroyed &&
      this.#phase === 'idle' &&
      this.#settlingSince === -1 &&
      now - this.#idleSince < this.#idleMs
    );
  }

  /** Writes `request`; false when the handler dropped it unsent and this (connected) connection is free for the next. */
  send(request: Http1Request, handler: Dispatcher.DispatchHandler): boolean {
    this.#handler = handler;
    this.#request = request;
    this.key = request.key ?? '';
    this.#heard = false;
    this.#method = request.method;
    this.#answered = false;
    this.#keepAlive = true;
    this.#untrusted = false;
    // Fields a head or trailers flushed early (handed to no handler yet) are not this answer's.
    if (this.#fields.length > 0) this.#fields = [];
    try {
      handler.onConnect?.((error?: Error) => {
        if (this.#handler === handler) this.#fail(error ?? new Error('aborted'));
      });
    } catch (error) {
      // Dropped before it was written (its caller left, or it was answered already): the connection serves the next.
      // Its handler then hears of it in onError, as undici tells it, and settles what it holds for the request.
      this.#handler = undefined;
      handler.onError?.(error instanceof Error ? error : new Error(String(error)));
      return this.#phase === 'connecting';
    }
    const body = request.body;
    if (body?.destroyed && !body.readableEnded) {
      // Cut while it waited for a connection: nothing of it is written, and the connection serves the next.
      this.#handler = undefined;
      handler.onError?.(body.errored ?? new Error('request body cut before it was sent'));
      return this.#phase === 'connecting';
    }
    if (this.#socket.readableLength > 0) {
      // The server spoke before it was asked (bytes a just-dialled socket buffered, or that came in the turn before
      // this request): they answer nothing, and would be read as this request's answer.
      // A malformed answer (502), as llhttp's codes are classified: the server is there, and said something wrong.
      this.#stray();
      this.#fail(failure('the server sent bytes before the request', 'HPE_INVALID_CONSTANT'));
      return true;
    }
    const chunked = body !== null && !hasContentLength(request.headers);
    this.#socket.write(requestHead(request, this.#client.authority, chunked), 'latin1');
    this.#written += 1;
    if (this.#phase !== 'connecting') {
      this.#phase = 'head';
      this.#timer.refresh();
    }
    if (body !== null) this.#writeBody(body, chunked);
    return true;
  }

  destroy(): void {
    this.#socket.destroy();
  }

  connectTimedOut(): void {
    if (this.#phase === 'connecting') this.#fail(failure('Connect Timeout Error', UNDICI_CODES.connectTimeout));
  }

  timedOut(): void {
    if (this.#phase === 'head' && this.#body !== null && !this.#socket.writableNeedDrain) {
      // The request is still being written and the server takes it in: the wait for its answer has not begun (the
      // caller's own pace is bounded by the stream idle timeout).
      this.#timer.refresh();
      return;
    }
    if (this.#phase === 'head') this.#fail(failure('Headers Timeout Error', UNDICI_CODES.headersTimeout));
    else if (this.#phase === 'body') this.#fail(failure('Body Timeout Error', UNDICI_CODES.bodyTimeout));
    // Connecting has its own timer; paused waits on the caller, whose stall the ForwardHandler bounds; idle is swept.
  }

  #onConnect(): void {
    clearTimeout(this.#connectTimer);
    if (this.#handler !== undefined) {
      this.#phase = 'head';
      this.#timer.refresh();
      return;
    }
    // Its request was dropped while it connected: it serves the next one.
    this.#phase = 'idle';
    this.#idleSince = performance.now();
    this.#client.released(this);
  }

  #writeBody(body: Readable, chunked: boolean): void {
    this.#body = body;
    this.#chunked = chunked;
    body.on('data', this.#onBodyData);
    body.on('end', this.#onBodyEnd);
    body.on('error', this.#onBodyError);
    body.on('close', this.#onBodyClose);
    // A body its owner paused (an exchange between two attempts) flows once it is written, as undici's client
    // resumes it; adding a 'data' listener alone leaves a paused stream paused.
    body.resume();
  }

  readonly #onBodyData = (chunk: Buffer): void => {
    const socket = this.#socket;
    if (this.#chunked) {
      if (chunk.length === 0) return; // an empty chunk would end the body
      // Each chunk's CRLF goes out with what follows it (the next size line or the end), as undici frames it: a body
      // cut mid-way reaches the server as the bytes that arrived and no more.
      socket.cork();
      socket.write(`\r\n${chunk.length.toString(16)}\r\n`, 'latin1');
      socket.write(chunk);
      socket.uncork();
    } else {
      socket.write(chunk);
    }
    if (socket.writableNeedDrain) this.#body?.pause();
  };

  readonly #onBodyEnd = (): void => {
    if (this.#chunked) this.#socket.write('\r\n0\r\n\r\n', 'latin1');
    this.#detachBody();
    if (this.#phase === 'head') this.#timer.refresh(); // the wait for the answer starts with the request written
  };

  readonly #onBodyError = (error: Error): void => {
    this.#detachBody();
    this.#fail(error);
  };

  /** Destroyed without an error before its end: as cut as a failed one. */
  readonly #onBodyClose = (): void => {
    if (this.#body === null) return;
    this.#detachBody();
    this.#fail(new Error('request body cut before its end'));
  };

  #detachBody(): Readable | null {
    const body = this.#body;
    if (body === null) return null;
    this.#body = null;
    body.removeListener('data', this.#onBodyData);
    body.removeListener('end', this.#onBodyEnd);
    body.removeListener('error', this.#onBodyError);
    body.removeListener('close', this.#onBodyClose);
    return body;
  }

  /**
   * The exchange ended before its body did (an early answer, a failure): the rest of the body is not wanted, so it is
   * destroyed, as undici does. A node:http request is unhooked from its socket while it is destroyed, so that the
   * destroy does not take the caller's connection (the answer to it may still be going out): node:http then stops
   * reading the body. The socket is put back after: the listener closes the connection behind its answer once that
   * is written (lingerAfterEarlyResponse reads `req.socket` then), which undici's later destroy left in place too.
   */
  #dropBody(error?: Error): void {
    const body = this.#detachBody();
    if (body === null || body.destroyed) return;
    if (!(body instanceof IncomingMessage)) {
      body.destroy(error);
      return;
    }
    const request = body as { socket: unknown };
    const socket = request.socket;
    request.socket = null;
    body.destroy(error);
    request.socket = socket;
  }

  #takeFields(): string[] {
    const fields = this.#fields;
    this.#fields = [];
    return fields;
  }

  #onData(chunk: Buffer): void {
    if (this.#handler === undefined) {
      // Bytes with no request outstanding answer nothing: the connection cannot be trusted with another request. A
      // 408 (some servers say so before closing an idle connection) or line ends alone are no answer out of turn.
      if (!isIdleCloseNotice(chunk)) this.#stray();
      this.#socket.destroy();
      return;
    }
    this.#heard = true;
    let result: number | Error;
    try {
      result = this.#parser.execute(chunk);
    } catch (error) {
      // The handler threw (writing the answer to its caller failed): this exchange fails, not the process.
      result = error instanceof Error ? error : new Error(String(error));
    }
    if (result instanceof Error) {
      this.#releaseDue = false;
      this.#fail(result);
      return;
    }
    if (result < chunk.length && !this.#socket.destroyed) {
      // llhttp stops after a 101 and leaves the rest of the chunk unread: whatever follows is another protocol's.
      this.#releaseDue = false;
      this.#fail(failure('the server switched protocols unasked', 'HPE_UNEXPECTED_UPGRADE'));
      return;
    }
    if (this.#releaseDue) {
      this.#releaseDue = false;
      if (!this.#gone && !this.#socket.destroyed) this.#settle();
    }
  }

  /**
   * Holds the connection back for two turns of the event loop before it takes the next request, as undici's client
   * does (settleTick): a FIN, a reset or stray bytes the server sent right after its answer are read first, so the next
   * request is not written to a connection the server is closing. Requests meanwhile wait for it instead of opening another.
   */
  #settle(): void {
    this.#idleSince = performance.now();
    this.#settlingSince = settleTicks;
    this.#client.settling(1);
    settlingConnections.push(this);
    if (!settleTickDue) {
      settleTickDue = true;
      setImmediate(settleTick);
    }
  }

  /** Called on each settle tick while it settles: true once it is done settling (given back, or gone). */
  settled(tick: number): boolean {
    if (this.#settlingSince === -1) return true; // closed meanwhile (#onClose)
    if (tick - this.#settlingSince < SETTLE_TICKS) return false;
    this.#settlingSince = -1;
    this.#client.settling(-1);
    if (!this.#gone && !this.#socket.destroyed) this.#client.released(this);
    return true;
  }

  #onHead(fields: string[], status: number, upgrade: boolean, keepAlive: boolean): number {
    const handler = this.#handler;
    if (handler === undefined || this.#answered) {
      // A second answer to one request (the rest of this chunk after a complete one): never handed to the next.
      this.#stray();
      this.#socket.destroy();
      return 0;
    }
    if (upgrade || status === 101) {
      // No request of this client asks for an upgrade; a 101 without Upgrade fields switches llhttp off all the same.
      this.#fail(failure(`the server switched protocols (${status}) unasked`, 'HPE_UNEXPECTED_UPGRADE'));
      return 0;
    }
    if (fields.length > 2 * MAX_RESPONSE_FIELDS) {
      this.#fail(failure(`the answer has more than ${MAX_RESPONSE_FIELDS} header fields`, 'HPE_HEADER_OVERFLOW'));
      return 0;
    }
    if (status < 100) {
      // llhttp takes any three digits: a status under 100 is no interim answer to skip, but a malformed one.
      this.#fail(failure(`the answer's status ${status} is not an HTTP status`, 'HPE_INVALID_STATUS'));
      return 0;
    }
    // Informational (100 Continue or 103 Early Hints, asked for or not): skipped, and any body it claims with it;
    // llhttp ends it as a message of its own and the answer follows.
    if (status < 200) {
      if (announcesBody(fields)) this.#untrusted = true;
      return 1;
    }
    this.#answered = true;
    if ((this.#method === 'HEAD' || status === 204 || status === 304) && announcesBody(fields)) this.#untrusted = true;
    // llhttp decides keep-alive before it knows a HEAD answer has no body; the server's explicit keep-alive holds.
    this.#keepAlive = keepAlive || (this.#method === 'HEAD' && saysKeepAlive(fields));
    this.#idleMs = keepAliveMs(fields, this.#client.options.keepAliveMs);
    this.#phase = 'body';
    this.#timer.refresh();
    // The handler reads names and values with toString('latin1'), which a string answers as a Buffer would.
    const resume = () => {
      if (this.#handler === handler) this.#resume();
    };
    if (handler.onHeaders?.(status, fields as unknown as Buffer[], resume, '') === false) this.#pause();
    return this.#method === 'HEAD' ? 1 : 0;
  }

  #onBody(chunk: Buffer): void {
    const handler = this.#handler;
    if (handler === undefined) return;
    if (this.#phase === 'body') this.#timer.refresh();
    if (handler.onData?.(chunk) === false) this.#pause();
  }

  #pause(): void {
    if (this.#phase !== 'body') return;
    this.#phase = 'paused';
    this.#socket.pause();
  }

  #resume(): void {
    if (this.#phase !== 'paused') return;
    this.#phase = 'body';
    this.#timer.refresh();
    this.#socket.resume();
  }

  #onAnswerEnd(): void {
    const handler = this.#handler;
    if (handler === undefined || !this.#answered) return; // an informational answer ended
    this.#handler = undefined;
    this.#phase = 'idle';
    if (this.#socket.isPaused()) this.#socket.resume();
    const early = this.#body !== null;
    this.#dropBody();
    handler.onComplete?.([]);
    if (early || !this.#keepAlive || this.#untrusted || this.#idleMs <= 0) {
      // Answered before its body was all written (the rest cannot be skipped on this connection), or not to be kept.
      this.#socket.destroy();
      return;
    }
    this.#releaseDue = true;
  }

  #onEnd(): void {
    // An answer delimited by the connection's end is complete now; anything else outstanding was cut.
    if (this.#handler !== undefined && this.#answered) {
      let result: undefined | Error;
      try {
        result = this.#parser.finish();
      } catch (error) {
        result = error instanceof Error ? error : new Error(String(error));
      }
      if (!(result instanceof Error) && this.#handler === undefined) {
        this.#releaseDue = false;
        this.#socket.destroy();
        return;
      }
    }
    if (this.#retriedStale()) {
      this.#socket.destroy();
      return;
    }
    this.#fail(failure('other side closed', 'UND_ERR_SOCKET'));
  }

  /**
   * The server closed a kept connection before any byte of an answer (its idle close crossed the request on the
   * wire): a bodiless GET, HEAD or OPTIONS is handed back to the client once, for another connection. The server never
   * read it, and the method is idempotent, so sending it again is what Go's and Linkerd's clients do.
   */
  #retriedStale(): boolean {
    const handler = this.#handler;
    const request = this.#request;
    if (
      handler === undefined ||
      request === undefined ||
      this.#client.options.retryStale !== true ||
      this.#written < 2 ||
      this.#heard ||
      request.body !== null ||
      !IDEMPOTENT_WITHOUT_BODY.has(request.method) ||
      retriedStale.has(request)
    ) {
      return false;
    }
    retriedStale.add(request);
    this.#handler = undefined;
    this.#request = undefined;
    this.#client.dispatch(request, handler);
    return true;
  }

  #stray(): void {
    if (this.#strayTold) return;
    this.#strayTold = true;
    this.#client.strayAnswer();
  }

  /** Ends the exchange under way, if any, with `error`, and the connection with it. */
  #fail(error: Error): void {
    const handler = this.#handler;
    this.#handler = undefined;
    this.#dropBody(error);
    this.#socket.destroy();
    handler?.onError?.(error);
  }

  #onClose(): void {
    if (this.#gone) return;
    this.#gone = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#connectTimer);
    if (this.#settlingSince !== -1) {
      this.#settlingSince = -1;
      this.#client.settling(-1);
    }
    if (this.#retriedStale()) {
      releaseParser(this.#parser);
      this.#client.gone(this);
      return;
    }
    const handler = this.#handler;
    this.#handler = undefined;
    const closed = failure('other side closed', 'UND_ERR_SOCKET');
    this.#dropBody(closed);
    handler?.onError?.(closed);
    releaseParser(this.#parser);
    this.#client.gone(this);
  }
}

function onTimer(connection: Http1Connection): void {
  connection.timedOut();
}

function onConnectTimer(connection: Http1Connection): void {
  connection.connectTimedOut();
}

/**
 * Connections settling after an answer, and one tick for all of them on each turn of the event loop while any
 * settles (an Immediate per turn, not two per request): a connection is given back on the second tick after its
 * answer ended, once the poll phases between have read what the server sent after it.
 */
const SETTLE_TICKS = 2;
let settlingConnections: Http1Connection[] = [];
let settleTicks = 0;
let settleTickDue = false;

function settleTick(): void {
  settleTickDue = false;
  settleTicks++;
  const settling = settlingConnections;
  settlingConnections = [];
  for (const connection of settling) {
    let done = true;
    try {
      done = connection.settled(settleTicks);
    } catch {
      // The request it was handed failed in its handler: that connection is not trusted further, the others settle on.
      connection.destroy();
    }
    if (!done) settlingConnections.push(connection);
  }
  if (settlingConnections.length > 0 && !settleTickDue) {
    settleTickDue = true;
    setImmediate(settleTick);
  }
}

/** A server's word before it closes an idle connection: a 408 answer, or nothing but line ends. */
function isIdleCloseNotice(chunk: Buffer): boolean {
  const text = chunk.toString('latin1', 0, Math.min(chunk.length, 32));
  return /^(\r?\n)*HTTP\/1\.[01] 408 /.test(text) || chunk.every((byte) => byte === 0x0d || byte === 0x0a);
}

/** A Transfer-Encoding, or a Content-Length other than 0: a body announced (which a HEAD answer only describes). */
function announcesBody(fields: readonly string[]): boolean {
  for (let i = 0; i < fields.length; i += 2) {
    const name = (fields[i] as string).toLowerCase();
    if (name === 'transfer-encoding') return true;
    if (name === 'content-length' && (fields[i + 1] as string).trim() !== '0') return true;
  }
  return false;
}

/** Whether the answer's Connection field says keep-alive. */
function saysKeepAlive(fields: readonly string[]): boolean {
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i] as string;
    if (name.length === 10 && name.toLowerCase() === 'connection') {
      return (fields[i + 1] as string)
        .toLowerCase()
        .split(',')
        .some((token) => token.trim() === 'keep-alive');
    }
  }
  return false;
}

/** The request line and head, with a Host from the client's authority when the request had none. */
function requestHead(request: Http1Request, authority: string, chunked: boolean): string {
  let head = `${request.method} ${request.path} HTTP/1.1\r\n`;
  const headers = request.headers;
  let host = false;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    if (name.length === 4 && name.toLowerCase() === 'host') host = true;
    head += `${name}: ${headers[i + 1] as string}\r\n`;
  }
  if (!host) head += `host: ${authority}\r\n`;
  // A chunked head's closing CRLF leads the first chunk (#onBodyData).
  return chunked ? `${head}transfer-encoding: chunked\r\n` : `${head}\r\n`;
}

function hasContentLength(headers: readonly string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    if (name.length === 14 && name.toLowerCase() === 'content-length') return true;
  }
  return false;
}

/**
 * How long a connection may idle before reuse: the server's `Keep-Alive: timeout=N` less a margin (so a request is not
 * written as the server closes it), else `fallbackMs`; 0 (not kept) when the server allows no more than the margin.
 */
function keepAliveMs(fields: readonly string[], fallbackMs: number): number {
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i] as string;
    if (name.length !== 10 || name.toLowerCase() !== 'keep-alive') continue;
    const match = /(?:^|[,;\s])timeout\s*=\s*(\d+)/i.exec(fields[i + 1] as string);
    if (match === null) continue;
    return Math.min(fallbackMs, Math.max(0, Number(match[1]) * 1000 - KEEP_ALIVE_MARGIN_MS));
  }
  return fallbackMs;
}
