// A minimal HTTP/2 client written at the frame level (RFC 9113 §4, §6) over TLS, for tests where node:http2's
// client would smooth over the wire: it can reset a request stream with RST_STREAM(NO_ERROR) without ever sending
// END_STREAM, which node:http2's close() cannot (it ends the writable side first). Header blocks are sent as
// HPACK literals without indexing (RFC 7541 §6.2.2), never Huffman-coded; responses are not decoded. With a client
// SVID it speaks to a sidecar's inbound (mTLS), and h2Frame/hpackBlock build frames a test writes in bulk (floods).
// driveFakeClock moves a faked setTimeout past a deadline of many seconds (an untaken answer's, a session's grace)
// instead of waiting it out, with realUntil for the waits meanwhile.
import { connect, type TLSSocket } from 'node:tls';
import { vi } from 'vitest';
import type { TestSvid } from './test-ca.js';
import { eventually, waitFor } from './wait.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const GOAWAY = 0x7;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const ACK = 0x1;

export interface RawH2Frame {
  readonly type: number;
  readonly stream: number;
  readonly flags: number;
  readonly payload: Buffer;
}

export interface RawH2Client {
  /** Opens stream `id` (odd, increasing) with the given header fields, pseudo-headers first. */
  headers(id: number, fields: ReadonlyArray<readonly [string, string]>, endStream?: boolean): void;
  data(id: number, bytes: Buffer | string, endStream?: boolean): void;
  reset(id: number, code: number): void;
  /** Frames received so far, in order: type, stream id, flags and payload. */
  readonly received: Array<RawH2Frame>;
  readonly socket: TLSSocket;
  /** The server ended the connection: GOAWAY received, or the socket closed. */
  ended(): boolean;
  close(): void;
}

/**
 * Connects to 127.0.0.1:`port` over TLS with ALPN h2 and sends the preface and an empty SETTINGS. With `client`,
 * presents that SVID (the server's SVID carries no DNS name: only its chain is checked against `caPem`).
 */
export function rawH2Client(port: number, caPem: string, client?: TestSvid): Promise<RawH2Client> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: '127.0.0.1',
      port,
      ca: [caPem],
      ALPNProtocols: ['h2'],
      servername: 'localhost',
      ...(client === undefined
        ? {}
        : { cert: client.chainPem, key: client.keyPem, checkServerIdentity: () => undefined }),
    });
    const received: RawH2Client['received'] = [];
    let buffered = Buffer.alloc(0);
    const frame = (type: number, flags: number, stream: number, payload: Buffer) => {
      socket.write(h2Frame(type, flags, stream, payload));
    };
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (let guard = 0; guard < 1_000 && buffered.length >= 9; guard++) {
        const length = buffered.readUIntBE(0, 3);
        if (buffered.length < 9 + length) break;
        const type = buffered[3] as number;
        const flags = buffered[4] as number;
        const stream = buffered.readUInt32BE(5) & 0x7fffffff;
        received.push({ type, stream, flags, payload: Buffer.from(buffered.subarray(9, 9 + length)) });
        if (type === SETTINGS && (flags & ACK) === 0) frame(SETTINGS, ACK, 0, Buffer.alloc(0));
        buffered = buffered.subarray(9 + length);
      }
    });
    socket.once('error', reject);
    socket.once('secureConnect', () => {
      if (socket.alpnProtocol !== 'h2') {
        reject(new Error(`server chose ${String(socket.alpnProtocol)}, not h2`));
        return;
      }
      socket.on('error', () => undefined);
      socket.write(PREFACE);
      frame(SETTINGS, 0, 0, Buffer.alloc(0));
      resolve({
        received,
        socket,
        ended: () => socket.destroyed || received.some((f) => f.type === GOAWAY),
        headers(id, fields, endStream = false) {
          frame(HEADERS, END_HEADERS | (endStream ? END_STREAM : 0), id, hpackBlock(fields));
        },
        data(id, bytes, endStream = false) {
          frame(DATA, endStream ? END_STREAM : 0, id, Buffer.from(bytes));
        },
        reset(id, code) {
          const payload = Buffer.alloc(4);
          payload.writeUInt32BE(code);
          frame(RST_STREAM, 0, id, payload);
        },
        close() {
          socket.destroy();
        },
      });
    });
  });
}

/** One HTTP/2 frame (RFC 9113 §4.1): 9-byte header, then `payload`. */
export function h2Frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(stream, 5);
  return Buffer.concat([header, payload]);
}

/** A header block of literal fields without indexing, in the order given (pseudo-headers first). */
export function hpackBlock(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  return Buffer.concat(fields.flatMap(([name, value]) => [Buffer.from([0]), hpackString(name), hpackString(value)]));
}

/** An HPACK string literal, not Huffman-coded: length as a 7-bit prefix integer (RFC 7541 §5.1), then the bytes. */
function hpackString(text: string): Buffer {
  const bytes = Buffer.from(text, 'latin1');
  const length: number[] = [];
  if (bytes.length < 127) {
    length.push(bytes.length);
  } else {
    length.push(127);
    let rest = bytes.length - 127;
    while (rest >= 128) {
      length.push((rest % 128) + 128);
      rest = Math.floor(rest / 128);
    }
    length.push(rest);
  }
  return Buffer.concat([Buffer.from(length), bytes]);
}

/** The error code of a received RST_STREAM frame (RFC 9113 §6.4). */
export function rstCodeOf(frame: RawH2Frame): number {
  return frame.payload.readUInt32BE(0);
}

/** `:status` values in the HPACK static table (RFC 7541 Appendix A, indices 8–14). */
const STATIC_STATUS = [200, 204, 206, 304, 400, 404, 500];

/**
 * The `:status` of a response HEADERS frame without padding or priority, read from its first field (RFC 9113
 * §8.3.2 puts it first): an indexed static entry, or a literal whose name is `:status` and whose value is not
 * Huffman-coded (nghttp2 codes "408" raw: its Huffman form is no shorter). Anything else throws rather than guess.
 */
export function statusOf(frame: RawH2Frame): number {
  const block = frame.payload;
  const first = block[0] ?? 0;
  if ((first & 0x80) !== 0) {
    const status = STATIC_STATUS[(first & 0x7f) - 8];
    if (status === undefined) throw new Error(`:status from a dynamic table entry (0x${first.toString(16)})`);
    return status;
  }
  // Literal with incremental indexing (01xxxxxx), without indexing (0000xxxx) or never indexed (0001xxxx).
  const nameIndex = (first & 0x40) !== 0 ? first & 0x3f : first & 0x0f;
  const length = block[1] ?? 0;
  if (nameIndex < 8 || nameIndex > 14 || (length & 0x80) !== 0) {
    throw new Error(`unsupported :status representation ${block.subarray(0, 4).toString('hex')}`);
  }
  return Number(block.subarray(2, 2 + length).toString('latin1'));
}

/**
 * Opens stream 1 with `fields` plus `content-length: 10` and sends 5 body bytes with END_STREAM, in one write: a body
 * shorter than its content-length, which nghttp2 resets with PROTOCOL_ERROR. Resolves with the RST_STREAM code the
 * client then received on stream 1; closes the client.
 */
export async function sendShortBody(
  c: RawH2Client,
  fields: ReadonlyArray<readonly [string, string]>,
): Promise<number | undefined> {
  try {
    c.socket.cork();
    c.headers(1, [...fields, ['content-length', '10']]);
    c.data(1, 'abcde', true);
    c.socket.uncork();
    const reset = () => c.received.find((f) => f.type === RST_STREAM && f.stream === 1);
    await eventually(() => reset() !== undefined);
    const frame = reset();
    return frame === undefined ? undefined : rstCodeOf(frame);
  } finally {
    c.close();
  }
}

/** A few turns of the event loop. setImmediate is never faked: sockets and streams act on what fake timers did. */
export async function loopTurns(count = 5): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * Polls `done` on event-loop turns for at most `ms` by the real clock (performance.now, never faked): a wait that
 * still works while setTimeout is faked (waitFor's own poll is a setTimeout). Whether `done` became true.
 */
export async function realUntil(done: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    if (await done()) return true;
    await loopTurns();
  }
  return done();
}

/**
 * While setTimeout is faked (vi.useFakeTimers), moves the fake clock on `stepMs` at a time, with a few event-loop
 * turns after each step and `each` before it, until `done` or `budgetMs` of fake time passed. Whether `done` became
 * true. For product timers of many seconds (a deadline, a grace) that a test would otherwise wait out.
 */
export async function driveFakeClock(
  done: () => boolean,
  budgetMs: number,
  stepMs: number,
  each: () => void = () => undefined,
): Promise<boolean> {
  for (let faked = 0; !done() && faked < budgetMs; faked += stepMs) {
    each();
    vi.advanceTimersByTime(stepMs);
    await loopTurns();
  }
  return done();
}

/**
 * Moves the fake clock a second at a time, a PING each (node:http2 puts its stream timer off on any frame of the
 * session), for up to 25 s or until `stream` is reset: for a deadline of the sidecar's own that only a reset ends.
 */
export function pingUntilReset(client: RawH2Client, stream: number): Promise<boolean> {
  return driveFakeClock(
    () => client.received.some((f) => f.type === RST_STREAM && f.stream === stream),
    25_000,
    1_000,
    () => client.socket.write(h2Frame(0x6 /* PING */, 0, 0, Buffer.alloc(8))),
  );
}

/**
 * Asks `path` over HTTP/2 with a flow-control window of 0 (SETTINGS_INITIAL_WINDOW_SIZE), keeping the session busy
 * with a PING every second, and returns the RST_STREAM that ends the request once its answer's head went out (the
 * body never can). For tests that an answer a caller never takes does not hold its stream for ever. The deadline is
 * a setTimeout armed as the answer is written: setTimeout is faked from before the request, and the fake clock is
 * moved a second at a time (a PING each) for up to 25 s, so the test does not wait the deadline out. node:http2's own
 * stream timers are not faked: in the moment of real time this takes, none of them can be what resets the stream.
 */
export async function untakenAnswerReset(
  port: number,
  caPem: string,
  authority: string,
  path: string,
): Promise<RawH2Frame> {
  const client = await rawH2Client(port, caPem);
  try {
    const zeroWindow = Buffer.alloc(6);
    zeroWindow.writeUInt16BE(0x4 /* SETTINGS_INITIAL_WINDOW_SIZE */, 0);
    client.socket.write(h2Frame(SETTINGS, 0, 0, zeroWindow));
    const head = () => client.received.find((f) => f.type === HEADERS && f.stream === 1);
    const reset = () => client.received.find((f) => f.type === RST_STREAM && f.stream === 1);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      client.headers(
        1,
        [
          [':method', 'GET'],
          [':scheme', 'https'],
          [':authority', authority],
          [':path', path],
        ],
        true,
      );
      // The answer's head goes out (headers are not flow-controlled); its body waits for a window that never opens.
      if (!(await realUntil(() => head() !== undefined, 5_000))) throw new Error('no answer head within 5 s');
      await pingUntilReset(client, 1);
    } finally {
      vi.useRealTimers();
    }
    // A reset sent in the last step may still be on its way (real time); the fake clock has stopped.
    return await waitFor('the untaken answer reset', reset, 5_000);
  } finally {
    client.close();
  }
}
