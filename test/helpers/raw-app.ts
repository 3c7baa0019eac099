// A raw TCP "app" for tests that must see the exact bytes a sidecar writes to its app (did the chunked body end
// with `0\r\n\r\n`, was the connection reset mid-body) and must misbehave at the byte level (die mid-response).
// Also an mTLS HTTP/2 client session for tests that drive the inbound with manual stream control.
import { type ClientHttp2Session, connect as h2Connect, type IncomingHttpHeaders } from 'node:http2';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TlsOptions } from 'node:tls';
import type { TestSvid } from './test-ca.js';

export { eventually } from './wait.js';

export interface RawAppConnection {
  /** Every byte received, latin1. */
  received: string;
  /** The connection ended or was reset by the sidecar. */
  closed: boolean;
  /** The sidecar ended its side cleanly (FIN) rather than resetting. */
  ended: boolean;
  readonly socket: Socket;
}

export interface RawApp {
  readonly port: number;
  readonly connections: RawAppConnection[];
  close(): Promise<void>;
}

/** `onData` sees each connection's accumulated bytes after every chunk; it may write or destroy the socket. */
export async function startRawApp(
  onData: (connection: RawAppConnection) => void = () => undefined,
  /** A TLS server instead (a raw peer sidecar): its connections count from the end of their handshake. */
  tls?: TlsOptions,
): Promise<RawApp> {
  const connections: RawAppConnection[] = [];
  const accept = (socket: Socket): void => {
    const connection: RawAppConnection = { received: '', closed: false, ended: false, socket };
    connections.push(connection);
    socket.on('data', (chunk: Buffer) => {
      connection.received += chunk.toString('latin1');
      onData(connection);
    });
    socket.on('end', () => {
      connection.ended = true;
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      connection.closed = true;
    });
  };
  const server: Server = tls === undefined ? createServer(accept) : createTlsServer(tls, accept);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of connections) c.socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * An `onData` for startRawApp that offers `answer` each HTTP/1.1 request head (GET or POST) of a connection once, in
 * order, with its path; a head `answer` returns false for is offered again with the connection's next bytes (and
 * the heads after it wait).
 */
export function eachRequestHead(
  answer: (connection: RawAppConnection, path: string, head: RegExpExecArray) => boolean | undefined,
): (connection: RawAppConnection) => void {
  const answered = new WeakMap<RawAppConnection, number>();
  return (connection) => {
    const heads = [...connection.received.matchAll(/(GET|POST) (\S+) HTTP\/1\.1\r\n[\s\S]*?\r\n\r\n/g)];
    for (const head of heads.slice(answered.get(connection) ?? 0)) {
      if (answer(connection, head[2] ?? '', head) === false) return;
      answered.set(connection, (answered.get(connection) ?? 0) + 1);
    }
  };
}

/** An HTTP/2 session to a sidecar's inbound with `svid` as the client certificate. */
export function mtlsH2Session(port: number, svid: TestSvid, caPem: string): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = h2Connect(`https://127.0.0.1:${port}`, {
      cert: svid.chainPem,
      key: svid.keyPem,
      ca: [caPem],
      checkServerIdentity: () => undefined, // SVIDs carry no DNS name; the chain is verified against the bundle
    });
    session.once('connect', () => resolve(session));
    session.once('error', reject);
    session.on('error', () => undefined);
  });
}

/** Sends `headers` (with `:method`) on `session` with no body; resolves with the status and body once it ended. */
export function h2Answer(
  session: ClientHttp2Session,
  headers: Readonly<Record<string, string>>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers);
    if (headers[':method'] !== 'CONNECT') stream.end();
    let body = '';
    let status = 0;
    stream.on('response', (h: IncomingHttpHeaders) => {
      status = Number(h[':status']);
    });
    stream.on('data', (chunk: Buffer) => {
      body += chunk.toString();
    });
    stream.on('end', () => resolve({ status, body }));
    stream.on('error', reject);
  });
}

/**
 * The status of a GET on `session` (path `/` unless `headers` name one), once its stream closed; 0 when no response
 * head arrived (a reset, a cut).
 */
export function h2GetStatus(
  session: ClientHttp2Session,
  headers: Readonly<Record<string, string | string[]>> = {},
): Promise<number> {
  return new Promise((resolve) => {
    const stream = session.request({ ':method': 'GET', ':path': '/', ...headers }, { endStream: true });
    let status = 0;
    stream.on('response', (h: IncomingHttpHeaders) => {
      status = Number(h[':status']);
    });
    stream.on('error', () => undefined);
    stream.on('close', () => resolve(status));
    stream.resume();
  });
}
