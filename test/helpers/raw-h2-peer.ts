// A scriptable HTTP/2 peer written at the frame level (RFC 9113 §4, §6) over mTLS, for tests where node:http2's
// server would smooth over the wire: it can reset a stream without ever sending END_STREAM, refuse a stream,
// announce GOAWAY with a chosen last stream id, and it records exactly which frames the client sent per stream
// (END_STREAM seen or not, RST_STREAM code, body bytes). It can also announce SETTINGS mid-connection (a stream
// limit of 0) and send a header block of any size (split into CONTINUATION frames), send any frame at all (a flood,
// a frame the protocol forbids there), and stay silent on SETTINGS (a server that does not speak HTTP/2 properly).
// Request header blocks are not decoded.
import type { AddressInfo } from 'node:net';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import type { TestSvid } from './test-ca.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PING = 0x6;
const GOAWAY = 0x7;
const CONTINUATION = 0x9;
/** The largest frame payload a client accepts before it says otherwise (SETTINGS_MAX_FRAME_SIZE's initial value). */
const MAX_FRAME_PAYLOAD = 16_384;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const ACK = 0x1;

export interface RawStream {
  readonly id: number;
  readonly connection: RawConnection;
  /** The client sent END_STREAM on this stream (its request is complete). */
  endStreamSeen: boolean;
  /** RST_STREAM error code the client sent, if any. */
  resetCode: number | undefined;
  /** This peer reset the stream (reset() was called). */
  resetSent: boolean;
  bodyBytes: number;
  respond(status: number, headers?: Readonly<Record<string, string>>, endStream?: boolean): void;
  /** A response head as given, HPACK-encoded by the test (indexed fields, table entries), split into frames as needed. */
  respondBlock(block: Buffer, endStream?: boolean): void;
  data(bytes: string | Buffer, endStream?: boolean): void;
  reset(code: number): void;
}

/** SETTINGS identifiers (RFC 9113 §6.5.2). */
export const H2_SETTING = Object.freeze({ maxConcurrentStreams: 0x3, initialWindowSize: 0x4 });

/** Frame types for RawConnection.frame (RFC 9113 §6). */
export const H2_FRAME = Object.freeze({ data: DATA, ping: PING, windowUpdate: 0x8 });

export interface RawConnection {
  readonly socket: TLSSocket;
  goaway(lastStreamId: number, code?: number): void;
  /** Announces new SETTINGS values: `[identifier, value]` pairs. */
  settings(values: readonly (readonly [number, number])[]): void;
  /** Writes one frame as given, whatever the protocol says of it there. */
  frame(type: number, flags: number, streamId: number, payload: Buffer): void;
  destroy(): void;
}

/** Called for each request HEADERS frame; also `onBody` after each DATA frame and `onEnd` after END_STREAM. */
export interface RawPeerScript {
  onStream(stream: RawStream): void;
  onData?(stream: RawStream): void;
  /**
   * No SETTINGS from this peer at all: neither its own at the start nor the acknowledgement of the client's (a
   * server's first frame must be SETTINGS, RFC 9113 §3.4). Default false.
   */
  noSettings?: boolean;
  /** Called once a connection's TLS handshake is done, before any frame of this peer's (its first frames, say). */
  onConnection?(connection: RawConnection): void;
  /** Whether a PING on `connection` is acknowledged (default: always); false plays a peer gone silent. */
  answersPing?(connection: RawConnection): boolean;
}

export interface RawH2Peer {
  readonly port: number;
  readonly streams: RawStream[];
  connections(): number;
  close(): Promise<void>;
}

export async function startRawH2Peer(
  svid: TestSvid,
  bundlePem: string,
  script: RawPeerScript,
  host = '127.0.0.1',
): Promise<RawH2Peer> {
  const streams: RawStream[] = [];
  const sockets = new Set<TLSSocket>();
  let connections = 0;
  const server: Server = createServer({
    cert: svid.chainPem,
    key: svid.keyPem,
    ca: bundlePem,
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: ['h2'],
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    connections++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => sockets.delete(socket));
    const byId = new Map<number, RawStream>();
    const connection: RawConnection = {
      socket,
      goaway: (lastStreamId, code = 0) => {
        const payload = Buffer.alloc(8);
        payload.writeUInt32BE(lastStreamId & 0x7fffffff, 0);
        payload.writeUInt32BE(code, 4);
        write(socket, GOAWAY, 0, 0, payload);
      },
      settings: (values) => {
        const payload = Buffer.alloc(6 * values.length);
        values.forEach(([id, value], i) => {
          payload.writeUInt16BE(id, 6 * i);
          payload.writeUInt32BE(value, 6 * i + 2);
        });
        write(socket, SETTINGS, 0, 0, payload);
      },
      frame: (type, flags, streamId, payload) => write(socket, type, flags, streamId, payload),
      destroy: () => socket.destroy(),
    };
    script.onConnection?.(connection);
    if (script.noSettings !== true) write(socket, SETTINGS, 0, 0, Buffer.alloc(0));
    let buffer = Buffer.alloc(0);
    let prefaceDone = false;
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (!prefaceDone) {
        if (buffer.length < PREFACE.length) return;
        buffer = buffer.subarray(PREFACE.length);
        prefaceDone = true;
      }
      while (buffer.length >= 9) {
        const length = buffer.readUIntBE(0, 3);
        if (buffer.length < 9 + length) return;
        const type = buffer[3] as number;
        const flags = buffer[4] as number;
        const streamId = buffer.readUInt32BE(5) & 0x7fffffff;
        const payload = buffer.subarray(9, 9 + length);
        buffer = buffer.subarray(9 + length);
        if (type === SETTINGS && (flags & ACK) === 0) {
          if (script.noSettings !== true) write(socket, SETTINGS, ACK, 0, Buffer.alloc(0));
        } else if (type === PING && (flags & ACK) === 0) {
          if (script.answersPing?.(connection) !== false) write(socket, PING, ACK, 0, payload);
        } else if (type === HEADERS) {
          const stream = rawStream(streamId, connection);
          stream.endStreamSeen = (flags & END_STREAM) !== 0;
          byId.set(streamId, stream);
          streams.push(stream);
          script.onStream(stream);
        } else if (type === DATA) {
          const stream = byId.get(streamId);
          if (stream === undefined) continue;
          stream.bodyBytes += length;
          if ((flags & END_STREAM) !== 0) stream.endStreamSeen = true;
          // Keep the client's flow-control window open (connection and stream).
          if (length > 0) {
            const increment = Buffer.alloc(4);
            increment.writeUInt32BE(length);
            write(socket, 0x8, 0, 0, increment);
            write(socket, 0x8, 0, streamId, increment);
          }
          script.onData?.(stream);
        } else if (type === RST_STREAM) {
          const stream = byId.get(streamId);
          if (stream !== undefined) stream.resetCode = payload.readUInt32BE(0);
          if (stream !== undefined) script.onData?.(stream);
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    streams,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function rawStream(id: number, connection: RawConnection): RawStream {
  const socket = connection.socket;
  return {
    id,
    connection,
    endStreamSeen: false,
    resetCode: undefined,
    resetSent: false,
    bodyBytes: 0,
    respond(status, headers = {}, endStream = false) {
      const parts: Buffer[] = [hpackLiteral(':status', String(status))];
      for (const [name, value] of Object.entries(headers)) parts.push(hpackLiteral(name, value));
      this.respondBlock(Buffer.concat(parts), endStream);
    },
    respondBlock(block, endStream = false) {
      const end = endStream ? END_STREAM : 0;
      if (block.length <= MAX_FRAME_PAYLOAD) {
        write(socket, HEADERS, END_HEADERS | end, id, block);
        return;
      }
      write(socket, HEADERS, end, id, block.subarray(0, MAX_FRAME_PAYLOAD));
      for (let at = MAX_FRAME_PAYLOAD; at < block.length; at += MAX_FRAME_PAYLOAD) {
        const last = at + MAX_FRAME_PAYLOAD >= block.length;
        write(socket, CONTINUATION, last ? END_HEADERS : 0, id, block.subarray(at, at + MAX_FRAME_PAYLOAD));
      }
    },
    data(bytes, endStream = false) {
      write(socket, DATA, endStream ? END_STREAM : 0, id, Buffer.from(bytes));
    },
    reset(code) {
      this.resetSent = true;
      const payload = Buffer.alloc(4);
      payload.writeUInt32BE(code);
      write(socket, RST_STREAM, 0, id, payload);
    },
  };
}

/**
 * An HPACK literal header field with a new name, no Huffman, strings of any length: without indexing (RFC 7541
 * §6.2.2), or with incremental indexing (§6.2.1: the field becomes the dynamic table's entry 62, which one byte,
 * 0xbe, names again).
 */
export function hpackLiteral(name: string, value: string, options: { readonly index?: boolean } = {}): Buffer {
  const n = Buffer.from(name, 'latin1');
  const v = Buffer.from(value, 'latin1');
  const kind = options.index === true ? 0x40 : 0x00;
  return Buffer.concat([Buffer.from([kind]), stringLength(n.length), n, stringLength(v.length), v]);
}

/** A string's length as an HPACK integer with a 7-bit prefix, the Huffman bit clear (RFC 7541 §5.1). */
function stringLength(length: number): Buffer {
  if (length < 0x7f) return Buffer.from([length]);
  const bytes = [0x7f];
  let rest = length - 0x7f;
  while (rest >= 0x80) {
    bytes.push((rest & 0x7f) | 0x80);
    rest >>= 7;
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

function write(socket: TLSSocket, type: number, flags: number, streamId: number, payload: Buffer): void {
  if (socket.destroyed) return;
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId & 0x7fffffff, 5);
  socket.write(Buffer.concat([header, payload]));
}
