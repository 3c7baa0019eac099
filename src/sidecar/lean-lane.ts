// The HTTP/1.1 listeners' lean lane (the outbound's, for the app; the inbound's and the external listener's, over
// TLS): the commonest request, one whole bodiless HTTP/1.1 GET or HEAD head in one read with nothing behind it, is
// parsed by Node's own llhttp (strict, as node:http runs it) and answered through LeanResponse, without node:http's
// IncomingMessage and ServerResponse: those were about a sixth of the outbound's CPU per request on Node 24
// (docs/performance.md, Round 17). Anything else — a head split over reads, a body, bytes pipelined behind it, a
// parse error, HTTP/1.0, Connection: close, Upgrade, Expect, CONNECT, 32 header fields or more — goes to node:http
// with every byte from that request on, for the rest of the connection, so node:http answers it exactly as it did
// before the lane existed (its limits, timeouts, refusals and pipelining bound).
import { EventEmitter } from 'node:events';
import type { Server } from 'node:http';
import { STATUS_CODES, validateHeaderName, validateHeaderValue } from 'node:http';
import type { Socket } from 'node:net';
import { HTTP_METHODS, HTTPParser, llhttpParser, releaseParser } from '../platform/index.js';

/** The listener's own (the outbound's OUTBOUND_LIMITS, the inbound's), as node:http applies them to its connections. */
export interface LeanLaneLimits {
  readonly maxHeaderBytes: number;
  /**
   * A request head must be whole within this, counted from the accept for the first request and from its first byte
   * for later ones (as node:http counts): past it the connection is the host's (headFailed, a 408).
   */
  readonly headersTimeoutMs: number;
  /** An idle connection is closed after this; its answers say so (`Keep-Alive: timeout=N`), as node:http's do. */
  readonly keepAliveTimeoutMs: number;
}

/** What ForwardHandler, bodyStillComing and cutResponse read of node:http's request: a whole bodiless HTTP/1.1 one. */
const WHOLE_HTTP11_REQUEST = Object.freeze({
  complete: true,
  headers: Object.freeze({}),
  httpVersionMajor: 1,
  httpVersionMinor: 1,
} as const);

export interface FastRequest {
  readonly method: 'GET' | 'HEAD';
  readonly url: string;
  /** Flat `[name, value, …]` as sent. */
  readonly raw: string[];
}

let dateText = '';
let dateSecond = -1;

/** The Date header value node:http would send, made once a second. */
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

/**
 * The answer to one lean request, written as node:http's ServerResponse would write it (the same Date, Connection
 * and Keep-Alive headers, chunked when it has no length, no body for HEAD, 204 and 304), with the surface the
 * exchanges (the outbound's H2Exchange, ForwardHandler, writeErrorH1) use of a ServerResponse. The head goes out with
 * the first body bytes in one write.
 */
export class LeanResponse extends EventEmitter {
  headersSent = false;
  writableEnded = false;
  destroyed = false;
  readonly req = WHOLE_HTTP11_REQUEST;
  readonly socket: Socket;
  readonly #head: boolean;
  /** `Connection: keep-alive` and `Keep-Alive: timeout=N`, as node:http sends them. */
  readonly #keepAlive: string;
  readonly #finished: (close: boolean) => void;
  #pending: string | undefined;
  #chunked = false;
  #noBody = false;
  #close = false;
  /** The connection is to close after this answer (closeAfter): its head says so unless it says otherwise. */
  #closeAfter = false;
  /** Fields set before the head (setHeader), by lower-case name, written with it as node:http merges them. */
  #extra: Map<string, [name: string, value: string]> | undefined;
  #awaitingDrain = false;

  constructor(socket: Socket, head: boolean, keepAlive: string, finished: (close: boolean) => void) {
    super();
    this.socket = socket;
    this.#head = head;
    this.#keepAlive = keepAlive;
    this.#finished = finished;
  }

  /** Sets a field the head will carry (a rejection's challenge or Retry-After), as ServerResponse.setHeader. */
  setHeader(name: string, value: string): void {
    if (this.#extra === undefined) this.#extra = new Map();
    this.#extra.set(name.toLowerCase(), [name, value]);
  }

  /** The connection closes once this answer is written; a head not yet written says `Connection: close`. */
  closeAfter(): void {
    this.#closeAfter = true;
  }

  writeHead(status: number, given: readonly string[] | Readonly<Record<string, string | number>>): void {
    // What node:http's writeHead refuses is refused alike (an exchange answers an unusable peer head with 502).
    if (!Number.isInteger(status) || status < 100 || status > 999) throw new RangeError(`invalid status ${status}`);
    let headers = Array.isArray(given)
      ? (given as readonly string[])
      : Object.entries(given).flatMap(([name, value]) => [name, String(value)]);
    const extra = this.#extra;
    if (extra !== undefined) {
      // As node:http: a field writeHead is given replaces one set before.
      for (let i = 0; i < headers.length; i += 2) extra.delete((headers[i] as string).toLowerCase());
      headers = [...[...extra.values()].flat(), ...headers];
    }
    let text = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'unknown'}\r\n`;
    let length = false;
    let date = false;
    let connection: 'none' | 'close' | 'given' = 'none';
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i] as string;
      const value = headers[i + 1] as string;
      validateHeaderName(name);
      validateHeaderValue(name, value);
      const lower = name.toLowerCase();
      if (lower === 'transfer-encoding' || lower === 'keep-alive') continue;
      // As node:http: a Connection header given is written where it stands, and none of its own is added.
      if (lower === 'connection') connection = value.toLowerCase() === 'close' ? 'close' : 'given';
      else if (lower === 'content-length') length = true;
      else if (lower === 'date') date = true;
      text += `${name}: ${value}\r\n`;
    }
    this.#noBody = this.#head || status === 204 || status === 304 || status < 200;
    this.#chunked = !length && !this.#noBody;
    if (!date) text += `Date: ${httpDate()}\r\n`;
    if (connection === 'none') text += this.#closeAfter ? 'Connection: close\r\n' : this.#keepAlive;
    this.#close = connection === 'close' || this.#closeAfter;
    if (this.#chunked) text += 'Transfer-Encoding: chunked\r\n';
    this.#pending = `${text}\r\n`;
    this.headersSent = true;
  }

  write(chunk: Buffer): boolean {
    if (this.destroyed || this.writableEnded) return false;
    const socket = this.socket;
    socket.cork();
    if (this.#pending !== undefined) {
      // latin1, as node:http writes a head: a field's obs-text bytes (0x80–0xFF) came in as one char each and go out
      // as the same bytes (UTF-8 would turn each into two).
      socket.write(this.#pending, 'latin1');
      this.#pending = undefined;
    }
    let flowing = true;
    // An empty chunk writes nothing of the body: in chunked framing it would be the end marker.
    if (!this.#noBody && chunk.length > 0) {
      if (this.#chunked) {
        socket.write(`${chunk.length.toString(16)}\r\n`);
        socket.write(chunk);
        flowing = socket.write('\r\n');
      } else flowing = socket.write(chunk);
    }
    socket.uncork();
    if (!flowing && !this.#awaitingDrain) {
      this.#awaitingDrain = true;
      socket.once('drain', () => {
        this.#awaitingDrain = false;
        this.emit('drain');
      });
    }
    return flowing;
  }

  end(chunk?: string | Buffer): void {
    if (this.destroyed || this.writableEnded) return;
    if (chunk !== undefined && chunk.length > 0) this.write(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    const socket = this.socket;
    if (this.#pending !== undefined || this.#chunked) {
      socket.cork();
      if (this.#pending !== undefined) socket.write(this.#pending, 'latin1');
      this.#pending = undefined;
      if (this.#chunked) socket.write('0\r\n\r\n');
      socket.uncork();
    }
    this.writableEnded = true;
    this.emit('finish');
    this.emit('close');
    this.#finished(this.#close || this.#closeAfter);
  }

  destroy(_error?: Error): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.socket.destroy();
    // As a ServerResponse's, its 'close' follows: the exchange aborts the app request and gives back its place at the
    // app (one that never comes would hold that place for good). An ended answer emitted it already.
    if (!this.writableEnded) process.nextTick(emitClose, this);
  }

  /** The connection closed before the answer was whole: the exchange hears 'close', as from a ServerResponse. */
  connectionClosed(): void {
    if (this.writableEnded || this.destroyed) return;
    this.destroyed = true;
    this.emit('close');
  }
}

export interface LeanLaneHost {
  /** Starts the answer of one lean request on `res`; false: the lane hands the request to node:http instead. */
  serve(request: FastRequest, res: LeanResponse, startedAt: number): boolean;
  /** node:http takes the connection, starting with `bytes`, for good. */
  handOff(socket: Socket, bytes: Buffer): void;
  /**
   * No whole request head came within LeanLaneLimits.headersTimeoutMs (code ERR_HTTP_REQUEST_TIMEOUT), or the caller
   * ended the connection inside one (HPE_INVALID_EOF_STATE): answered as node:http answers its own.
   */
  headFailed(socket: Socket, error: Error & { code: string }): void;
  /** The connection was closed for idling between requests (counted where node:http's idle closes are). */
  idleClosed?(socket: Socket): void;
}

/** What a listener that hands connections to a node:http `server` does with its lean lanes. */
export interface NodeHttpLaneOptions {
  readonly server: Server;
  /** The listener's connections still in their lane: one leaves it when handed over or timed out. */
  readonly lanes: Map<Socket, LeanLane>;
  readonly serve: LeanLaneHost['serve'];
  /** node:http's 'clientError' path, which answers a head timeout (408) as node:http's own. */
  readonly clientError: (error: Error & { code?: string }, socket: Socket) => void;
  readonly idleClosed?: LeanLaneHost['idleClosed'];
}

/** The lane host of a listener whose other requests node:http serves: one per listener, shared by its connections. */
export function nodeHttpLaneHost(options: NodeHttpLaneOptions): LeanLaneHost {
  const { server, lanes, serve, clientError, idleClosed } = options;
  return {
    serve,
    handOff: (socket, bytes) => {
      lanes.delete(socket);
      socket.unshift(bytes);
      server.emit('connection', socket);
    },
    headFailed: (socket, error) => {
      lanes.delete(socket);
      clientError(error, socket);
    },
    ...(idleClosed === undefined ? {} : { idleClosed }),
  };
}

export interface LeanLane {
  /** Ends the connection now if no answer is due on it, else once that answer is written (drain, retirement). */
  closeIdle(): void;
}

const CRLF_CRLF = 0x0d0a0d0a;

/** How long an ended idle connection may take to flush its last answer before it is destroyed. */
const END_GRACE_MS = 1_000;

function emitClose(res: LeanResponse): void {
  res.emit('close');
}

/** Serves `socket`'s requests in the lean lane until one does not fit, then hands the connection to node:http. */
export function leanLane(socket: Socket, host: LeanLaneHost, limits: LeanLaneLimits): LeanLane {
  const parser = llhttpParser('request', limits.maxHeaderBytes);
  const keepAlive = keepAliveHeaders(limits.keepAliveTimeoutMs);
  // Per chunk: what llhttp saw of it.
  let heads = 0;
  let completes = 0;
  let split = false;
  let body = false;
  let fits = false;
  let method: FastRequest['method'] = 'GET';
  let url = '';
  let raw: string[] = [];
  // node:http's binding hands over a head of 32 fields or more (or one split across reads) in parts.
  parser[HTTPParser.kOnHeaders] = () => {
    split = true;
  };
  parser[HTTPParser.kOnHeadersComplete] = (
    major: number,
    minor: number,
    fields: string[],
    methodIndex: number,
    path: string,
    _status: number,
    _statusText: string,
    upgrade: boolean,
    keepAlive: boolean,
  ) => {
    heads += 1;
    const name = HTTP_METHODS[methodIndex];
    fits = major === 1 && minor === 1 && keepAlive && !upgrade && (name === 'GET' || name === 'HEAD');
    method = name === 'HEAD' ? 'HEAD' : 'GET';
    url = path;
    raw = fields;
    return 0;
  };
  parser[HTTPParser.kOnBody] = () => {
    body = true;
  };
  parser[HTTPParser.kOnMessageComplete] = () => {
    completes += 1;
  };

  let current: LeanResponse | undefined;
  /** closeIdle ended the connection: nothing more is read or served. */
  let ending = false;
  /** Bytes that came while an answer was due (pipelined): read once it is written. */
  let queued: Buffer | undefined;
  /**
   * A request head that is not whole yet: its bytes, copied into one buffer that grows by doubling (a list of the
   * reads would cost a Buffer object per read, a one-byte read included), kept under the head's timer until it is
   * whole, then handed over together. Handed over at its first part, node:http would start the head's budget again.
   */
  let held: Buffer | undefined;
  let heldBytes = 0;

  /** Leaves the connection to someone else: no listener, timer or parser of the lane stays behind. */
  let detached = false;
  const detach = (): void => {
    if (detached) return;
    detached = true;
    clearTimeout(headTimer);
    socket.removeListener('data', onData);
    socket.removeListener('end', onEnd);
    socket.removeListener('close', onClose);
    socket.removeListener('timeout', onIdle);
    socket.setTimeout(0);
    releaseParser(parser);
  };
  const handOff = (bytes: Buffer): void => {
    detach();
    if (socket.isPaused()) socket.resume();
    host.handOff(socket, bytes);
  };

  const finished = (close: boolean): void => {
    current = undefined;
    if (close) {
      // Nothing is read or served after an answer that closes (a drain, Connection: close): a request sent behind
      // it would reach the app with nowhere to answer.
      queued = undefined;
      endNow();
      return;
    }
    if (queued !== undefined) {
      const next = queued;
      queued = undefined;
      socket.resume();
      take(next);
    }
  };

  const take = (chunk: Buffer): void => {
    const startedAt = performance.now();
    heads = 0;
    completes = 0;
    split = false;
    body = false;
    fits = false;
    const consumed = parser.execute(chunk);
    if (heads === 0 && consumed === chunk.length) {
      // No head complete and nothing wrong yet: wait for the rest. Line breaks alone begin no request (llhttp skips
      // them, as node:http does): nothing to hold or time.
      if (held === undefined && onlyLineBreaks(chunk)) return;
      if (heldBytes + chunk.length > limits.maxHeaderBytes * HELD_HEAD_FACTOR + HELD_HEAD_SLACK) {
        // llhttp counts the target, names and values against maxHeaderBytes, not the blanks around them: a head
        // padded with spaces would be held without bound.
        failHead('request head too large', 'HPE_HEADER_OVERFLOW');
        return;
      }
      hold(chunk);
      headTimer ??= setTimeout(headTimedOut, limits.headersTimeoutMs);
      return;
    }
    clearTimeout(headTimer);
    headTimer = undefined;
    if (held !== undefined) {
      // Never served here: llhttp handed the head's first lines over before it was whole (kOnHeaders), so the lane's
      // copy of it lacks them; node:http parses all of it again.
      hold(chunk);
      handOffHeld();
      return;
    }
    const whole =
      consumed === chunk.length &&
      fits &&
      heads === 1 &&
      completes === 1 &&
      !split &&
      !body &&
      chunk.length >= 4 &&
      chunk.readUInt32BE(chunk.length - 4) === CRLF_CRLF;
    if (!whole || framedOrExpecting(raw)) {
      handOff(chunk);
      return;
    }
    const res = new LeanResponse(socket, method === 'HEAD', keepAlive, finished);
    current = res;
    if (!host.serve({ method, url, raw }, res, startedAt)) {
      current = undefined;
      handOff(chunk);
    }
  };

  const onData = (chunk: Buffer): void => {
    // Sent after this side's FIN (closeIdle): no answer could be written, so the request is never served.
    if (ending) return;
    if (current !== undefined) {
      queued = queued === undefined ? chunk : Buffer.concat([queued, chunk]);
      socket.pause();
      return;
    }
    take(chunk);
  };
  // The app half-closed: as node:http (its httpAllowHalfOpen off), an answer still due is abandoned (the exchange
  // hears 'close' and cancels its stream) and the connection is ended.
  const onEnd = (): void => {
    if (held !== undefined) {
      // Ended inside a head: node:http's parser would fail it at the end of input, and its caller get a 400.
      failHead('request head cut short', 'HPE_INVALID_EOF_STATE');
      return;
    }
    queued = undefined;
    const due = current;
    current = undefined;
    due?.connectionClosed();
    socket.end();
  };
  const onClose = (): void => {
    detach();
    current?.connectionClosed();
  };
  const onIdle = (): void => {
    // An answer due, or a head awaited under its own timer (a first request's from the accept, or one coming in
    // parts), which ends the wait with a 408 instead of a silent close.
    if (current !== undefined || headTimer !== undefined) return;
    socket.destroy();
    host.idleClosed?.(socket);
  };
  /** Ends the connection after what was written: nothing more is read or served (a FIN, then a reset past a grace). */
  function endNow(): void {
    if (ending) return;
    ending = true;
    clearTimeout(headTimer); // a head still coming is not waited for
    headTimer = undefined;
    held = undefined;
    // The last answer may still be flushing: a FIN after it, not a reset that cuts it; a peer that does not read it
    // is cut after a grace.
    socket.end();
    setTimeout(() => socket.destroy(), END_GRACE_MS).unref();
  }

  /** Appends `chunk` to the held head, doubling the buffer when it is full. */
  function hold(chunk: Buffer): void {
    if (held === undefined || heldBytes + chunk.length > held.length) {
      const grown = Buffer.allocUnsafe(
        Math.max(HELD_HEAD_FIRST_BYTES, (held?.length ?? 0) * 2, heldBytes + chunk.length),
      );
      held?.copy(grown, 0, 0, heldBytes);
      held = grown;
    }
    chunk.copy(held, heldBytes);
    heldBytes += chunk.length;
  }

  /** node:http takes the held head (whole, or, at a drain, as far as it came) and the connection with it. */
  function handOffHeld(): void {
    const bytes = (held as Buffer).subarray(0, heldBytes);
    held = undefined;
    heldBytes = 0;
    handOff(bytes);
  }

  function headTimedOut(): void {
    headTimer = undefined;
    failHead('no request head in time', 'ERR_HTTP_REQUEST_TIMEOUT');
  }

  /** The lane gives up on a request head: the host answers it as node:http answers its own failure of that code. */
  function failHead(message: string, code: string): void {
    held = undefined;
    detach();
    host.headFailed(socket, Object.assign(new Error(message), { code }));
  }
  // node:http counts a new connection's head time from the accept, so one that sends nothing gets its 408 too.
  let headTimer: NodeJS.Timeout | undefined = setTimeout(headTimedOut, limits.headersTimeoutMs);
  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('close', onClose);
  socket.on('timeout', onIdle);
  socket.setTimeout(limits.keepAliveTimeoutMs);
  return {
    closeIdle: () => {
      if (current !== undefined) {
        current.closeAfter();
        return;
      }
      if (held !== undefined) {
        // A request has begun: node:http answers it, closing after (the drain sets Connection: close), as it did
        // one handed over at its first part; the drain's deadline bounds the wait for the rest of its head.
        handOffHeld();
        return;
      }
      endNow();
    },
  };
}

/**
 * The raw bytes one request head may take while the lane holds it: llhttp counts the target, names and values
 * against maxHeaderBytes but not the `: ` and CRLF around them, which make a raw head of one-character fields up to
 * four times what it counts (`a:\r\n` is four bytes, one counted); the slack is the request line's method and version.
 */
const HELD_HEAD_FACTOR = 4;
const HELD_HEAD_SLACK = 1024;
/** The first buffer of a held head: most heads that come in parts are a few hundred bytes. */
const HELD_HEAD_FIRST_BYTES = 2048;

/** CR and LF only: what llhttp skips before a request. */
function onlyLineBreaks(chunk: Buffer): boolean {
  for (const byte of chunk) if (byte !== 0x0d && byte !== 0x0a) return false;
  return true;
}

/** A GET or HEAD that still announces a body or an expectation: node:http's to answer. */
function framedOrExpecting(raw: readonly string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (name === 'content-length' || name === 'transfer-encoding' || name === 'expect') return true;
  }
  return false;
}

/** node:http's keep-alive header lines for a timeout of `ms`. */
function keepAliveHeaders(ms: number): string {
  return `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(ms / 1000)}\r\n`;
}
