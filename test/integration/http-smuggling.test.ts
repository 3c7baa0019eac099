// Request smuggling through the sidecar's HTTP/1.1 listeners, on real sockets in both directions: a second request
// hidden in the body of the first reaches the upstream as body bytes of one request only; a chunk size that overflows
// 64 bits and a megabyte of chunk extensions are framing errors, answered 400 (or the connection closed) and counted as
// MESHAUTH_ERR_BAD_REQUEST; and the upstream connection that carried the broken request is closed, never reused for the
// next one. Inbound: peer → mTLS → sidecar → app (HTTP/1.1). Outbound: app → plain HTTP/1.1 → sidecar → HTTP/1.1-only
// peer over mTLS.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, connect as netConnect, Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawTlsExchange } from '../helpers/raw-tls.js';
import {
  PEER_HOST,
  peerServerTls,
  startRoutedSidecar,
  startTestSidecar,
  type TestSidecar,
  testConfig,
} from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

interface Seen {
  readonly conn: number;
  readonly method: string;
  readonly url: string;
  body: string;
  complete: boolean;
}

/** An upstream that records each request with the number of the connection it came on, and which closed. */
interface Upstream {
  readonly seen: Seen[];
  readonly closed: Set<number>;
  readonly port: number;
  close(): Promise<void>;
}

async function startUpstream(create: (handler: (req: IncomingMessage, res: ServerResponse) => void) => Server) {
  const seen: Seen[] = [];
  const closed = new Set<number>();
  const connOf = new WeakMap<object, number>();
  let next = 0;
  const server = create((req, res) => {
    const entry: Seen = {
      conn: connOf.get(req.socket) ?? -1,
      method: req.method ?? '',
      url: req.url ?? '',
      body: '',
      complete: false,
    };
    seen.push(entry);
    req.setEncoding('latin1');
    req.on('data', (d: string) => {
      entry.body += d;
    });
    req.on('error', () => undefined);
    req.on('end', () => {
      entry.complete = true;
      res.end('ok');
    });
  });
  server.on('connection', (socket) => {
    const id = next++;
    connOf.set(socket, id);
    socket.on('close', () => closed.add(id));
  });
  server.on('secureConnection', (socket) => {
    // https: 'connection' saw the TCP socket, the request's socket is the TLS one.
    connOf.set(socket, next - 1);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const upstream: Upstream = {
    seen,
    closed,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return upstream;
}

const HIDDEN = 'GET /admin HTTP/1.1\r\nHost: b\r\n\r\n';
const MB = 1024 * 1024;

/**
 * [name, request bytes after the request line and Host]: each is a framing error the parser must refuse, with the
 * hidden request after it. The size is one hex digit past 64 bits; Node caps chunk extensions at 16 KiB in all.
 */
const FRAMING_ERRORS: Array<[string, string]> = [
  [
    'fail/chunk size 1ffffffffffffffff (overflows 64 bits)',
    `Transfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n${'a'.repeat(64)}\r\n0\r\n\r\n${HIDDEN}`,
  ],
  [
    'fail/1 MB of chunk extensions',
    `Transfer-Encoding: chunked\r\n\r\n1${';a'.repeat(MB / 2)}\r\na\r\n0\r\n\r\n${HIDDEN}`,
  ],
  [
    'fail/one chunk extension value of 1 MB',
    `Transfer-Encoding: chunked\r\n\r\n1;a=${'b'.repeat(MB)}\r\na\r\n0\r\n\r\n${HIDDEN}`,
  ],
  [
    'fail/1 MB of malformed chunk extensions',
    `Transfer-Encoding: chunked\r\n\r\n1;${'x='.repeat(MB / 2)}\r\na\r\n0\r\n\r\n${HIDDEN}`,
  ],
];

/** A chunk of 2^64 − 1 bytes fits 64 bits: what follows is body, however much it looks like a request. */
const HUGE_CHUNK = `Transfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n${'a'.repeat(64)}\r\n0\r\n\r\n${HIDDEN}`;

describe('inbound: request smuggling (H06)', () => {
  let ca: TestCa;
  let app: Upstream;
  let sidecar: TestSidecar;
  let client: TestSvid;

  beforeAll(async () => {
    ca = await TestCa.create();
    app = await startUpstream((handler) => createHttpServer(handler));
    sidecar = await startTestSidecar(ca, ca.idFor('/ns/a/sa/server'), testConfig({ appPort: app.port }));
    client = await ca.issue({ id: ca.idFor('/ns/a/sa/client') });
  });
  afterAll(async () => {
    await sidecar?.sidecar.close(0);
    await app?.close();
  });

  /** An HTTP/1.1 connection over mTLS to the inbound, for bytes written a piece at a time. */
  const openMtls = () =>
    tlsConnect({
      host: '127.0.0.1',
      port: sidecar.sidecar.inboundPort,
      cert: client.chainPem,
      key: client.keyPem,
      ca: [ca.bundlePem],
      checkServerIdentity: () => undefined, // SVIDs carry no DNS name; the chain is verified against the bundle
      ALPNProtocols: ['http/1.1'],
    });
  const send = (bytes: string) =>
    rawTlsExchange(sidecar.sidecar.inboundPort, client, ca.bundlePem, bytes).catch(() => '');
  const badRequests = async () => {
    const { values } = await sidecar.metrics.requestsRejected.get();
    return (
      values.find((v) => v.labels.direction === 'inbound' && v.labels.code === 'MESHAUTH_ERR_BAD_REQUEST')?.value ?? 0
    );
  };

  it('ok/a request hidden in a Content-Length body reaches the app as that body, one request', async () => {
    const seen = app.seen.length;
    const reply = await send(
      `POST /upload HTTP/1.1\r\nHost: b\r\nContent-Length: ${HIDDEN.length}\r\nConnection: close\r\n\r\n${HIDDEN}`,
    );
    expect(reply.split('\r\n', 1)[0]).toBe('HTTP/1.1 200 OK');
    expect(reply.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    expect(app.seen.slice(seen)).toEqual([expect.objectContaining({ method: 'POST', url: '/upload', body: HIDDEN })]);
  });

  it('ok/a request hidden in a chunk reaches the app as that body, one request', async () => {
    const seen = app.seen.length;
    const chunk = `${HIDDEN.length.toString(16)}\r\n${HIDDEN}\r\n0\r\n\r\n`;
    const reply = await send(
      `POST /upload HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunk}`,
    );
    expect(reply.split('\r\n', 1)[0]).toBe('HTTP/1.1 200 OK');
    expect(reply.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    expect(app.seen.slice(seen)).toEqual([expect.objectContaining({ method: 'POST', url: '/upload', body: HIDDEN })]);
  });

  it('ok/chunk size ffffffffffffffff: what follows stays body; the caller leaving cuts the app request, its connection not reused', async () => {
    const seen = app.seen.length;
    const socket = openMtls();
    const reply = readAll(socket);
    socket.write(`POST /upload HTTP/1.1\r\nHost: b\r\n${HUGE_CHUNK}`);
    const cut = await waitFor(
      'the hidden bytes as body',
      () => app.seen.slice(seen).find((s) => s.body.includes(HIDDEN)),
      5_000,
    );
    socket.end();
    expect(await reply).not.toContain('200 OK');
    await waitFor('the app connection closed', () => app.closed.has(cut.conn), 5_000);
    expect(cut).toMatchObject({ url: '/upload', complete: false });
    expect(app.seen.slice(seen)).toHaveLength(1);
    expect((await send('GET /after HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n')).split('\r\n', 1)[0]).toBe(
      'HTTP/1.1 200 OK',
    );
    expect(app.seen.at(-1)).toMatchObject({ url: '/after' });
    expect(app.seen.at(-1)?.conn).not.toBe(cut.conn);
    expect(app.seen.some((s) => s.url === '/admin')).toBe(false);
  });

  it('fail/a chunk size overflow once the app has the request → its app connection is closed, not reused', async () => {
    const seen = app.seen.length;
    const before = await badRequests();
    const socket = openMtls();
    const reply = readAll(socket);
    socket.write('POST /upload HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    const cut = await waitFor(
      'the first chunk at the app',
      () => app.seen.slice(seen).find((s) => s.body === 'hello'),
      5_000,
    );
    socket.write(`1ffffffffffffffff\r\n${'a'.repeat(64)}\r\n0\r\n\r\n${HIDDEN}`);
    expect(await reply).not.toContain('200 OK');
    await waitFor('the app connection closed', () => app.closed.has(cut.conn), 5_000);
    await waitFor('the rejection counted', async () => (await badRequests()) === before + 1, 5_000);
    expect(cut.complete).toBe(false);
    expect((await send('GET /after HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n')).split('\r\n', 1)[0]).toBe(
      'HTTP/1.1 200 OK',
    );
    expect(app.seen.slice(seen).map((s) => s.url)).toEqual(['/upload', '/after']);
    expect(app.seen.at(-1)?.conn).not.toBe(cut.conn);
  });

  it.each(FRAMING_ERRORS)(
    '%s → 400 or closed, counted, only the first request reaches the app and its app connection is not reused',
    async (_name, rest) => {
      // A keep-alive app connection is in the pool before the hostile request.
      expect((await send('GET /warm HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n')).split('\r\n', 1)[0]).toBe(
        'HTTP/1.1 200 OK',
      );
      const seen = app.seen.length;
      const before = await badRequests();
      const reply = await send(`POST /upload HTTP/1.1\r\nHost: b\r\n${rest}`);
      if (reply !== '') expect(reply.split('\r\n', 1)[0]).toBe('HTTP/1.1 400 Bad Request');
      expect(reply).not.toContain('200 OK');
      await waitFor('the rejection counted', async () => (await badRequests()) === before + 1, 5_000);
      const hostile = app.seen.slice(seen);
      // At most the head of the first request reached the app, never a complete one, never the hidden one.
      expect(hostile.every((s) => s.url === '/upload' && !s.complete)).toBe(true);
      expect(hostile.length).toBeLessThanOrEqual(1);
      // The app connection that carried the broken request is closed; the next request goes on another one.
      for (const s of hostile) await waitFor('the app connection closed', () => app.closed.has(s.conn), 5_000);
      expect((await send('GET /after HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n')).split('\r\n', 1)[0]).toBe(
        'HTTP/1.1 200 OK',
      );
      const after = app.seen.at(-1);
      expect(after?.url).toBe('/after');
      for (const s of hostile) expect(after?.conn).not.toBe(s.conn);
      expect(app.seen.some((s) => s.url === '/admin')).toBe(false);
      expect(await badRequests()).toBe(before + 1); // one broken request, one count
    },
  );
});

describe('outbound: request smuggling to an HTTP/1.1 peer (H06)', () => {
  let ca: TestCa;
  let peer: Upstream;
  let sidecar: TestSidecar;

  beforeAll(async () => {
    ca = await TestCa.create();
    const peerId = ca.idFor('/ns/b/sa/b');
    const svid = await ca.issue({ id: peerId });
    peer = await startUpstream((handler) =>
      createHttpsServer({ ...peerServerTls(svid, ca), ALPNProtocols: ['http/1.1'] }, handler),
    );
    sidecar = await startRoutedSidecar(ca, peer.port, peerId);
  });
  afterAll(async () => {
    await sidecar?.sidecar.close(0);
    await peer?.close();
  });

  const send = (bytes: string) => rawExchange(sidecar.sidecar.outboundPort, bytes);
  const badRequests = async () => {
    const { values } = await sidecar.metrics.requestsRejected.get();
    return (
      values.find((v) => v.labels.direction === 'outbound' && v.labels.code === 'MESHAUTH_ERR_BAD_REQUEST')?.value ?? 0
    );
  };
  const head = `POST http://${PEER_HOST}/upload HTTP/1.1\r\nHost: ${PEER_HOST}\r\n`;

  it('ok/a request hidden in a Content-Length body reaches the peer as that body, one request', async () => {
    const seen = peer.seen.length;
    const reply = await send(`${head}Content-Length: ${HIDDEN.length}\r\nConnection: close\r\n\r\n${HIDDEN}`);
    expect(reply.split('\r\n', 1)[0]).toBe('HTTP/1.1 200 OK');
    expect(reply.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    expect(peer.seen.slice(seen)).toEqual([expect.objectContaining({ method: 'POST', url: '/upload', body: HIDDEN })]);
  });

  it('ok/a request hidden in a chunk reaches the peer as that body, one request', async () => {
    const seen = peer.seen.length;
    const chunk = `${HIDDEN.length.toString(16)}\r\n${HIDDEN}\r\n0\r\n\r\n`;
    const reply = await send(`${head}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunk}`);
    expect(reply.split('\r\n', 1)[0]).toBe('HTTP/1.1 200 OK');
    expect(reply.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    expect(peer.seen.slice(seen)).toEqual([expect.objectContaining({ method: 'POST', url: '/upload', body: HIDDEN })]);
  });

  it('ok/chunk size ffffffffffffffff: what follows stays body; the app leaving cuts the peer request, its connection not reused', async () => {
    const seen = peer.seen.length;
    const socket = netConnect(sidecar.sidecar.outboundPort, '127.0.0.1');
    const reply = readAll(socket);
    socket.write(`${head}${HUGE_CHUNK}`);
    const cut = await waitFor(
      'the hidden bytes as body',
      () => peer.seen.slice(seen).find((s) => s.body.includes(HIDDEN)),
      5_000,
    );
    socket.end();
    expect(await reply).not.toContain('200 OK');
    await waitFor('the peer connection closed', () => peer.closed.has(cut.conn), 5_000);
    expect(cut).toMatchObject({ url: '/upload', complete: false });
    expect(peer.seen.slice(seen)).toHaveLength(1);
    const next = await send(
      `GET http://${PEER_HOST}/after HTTP/1.1\r\nHost: ${PEER_HOST}\r\nConnection: close\r\n\r\n`,
    );
    expect(next.split('\r\n', 1)[0]).toBe('HTTP/1.1 200 OK');
    expect(peer.seen.at(-1)).toMatchObject({ url: '/after' });
    expect(peer.seen.at(-1)?.conn).not.toBe(cut.conn);
    expect(peer.seen.some((s) => s.url === '/admin')).toBe(false);
  });

  it('fail/a chunk size overflow once the peer has the request → 400, its peer connection is closed, not reused', async () => {
    const seen = peer.seen.length;
    const before = await badRequests();
    const socket = netConnect(sidecar.sidecar.outboundPort, '127.0.0.1');
    const reply = readAll(socket);
    socket.write(`${head}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`);
    const cut = await waitFor(
      'the first chunk at the peer',
      () => peer.seen.slice(seen).find((s) => s.body === 'hello'),
      5_000,
    );
    socket.write(`1ffffffffffffffff\r\n${'a'.repeat(64)}\r\n0\r\n\r\n${HIDDEN}`);
    const text = await reply;
    if (text !== '') expect(text.split('\r\n', 1)[0]).toBe('HTTP/1.1 400 Bad Request');
    await waitFor('the peer connection closed', () => peer.closed.has(cut.conn), 5_000);
    await waitFor('the rejection counted', async () => (await badRequests()) === before + 1, 5_000);
    expect(cut.complete).toBe(false);
    const next = await send(
      `GET http://${PEER_HOST}/after HTTP/1.1\r\nHost: ${PEER_HOST}\r\nConnection: close\r\n\r\n`,
    );
    expect(next.split('\r\n', 1)[0]).toBe('HTTP/1.1 200 OK');
    expect(peer.seen.slice(seen).map((s) => s.url)).toEqual(['/upload', '/after']);
    expect(peer.seen.at(-1)?.conn).not.toBe(cut.conn);
  });

  // The outbound answers the broken body itself: the peer request it aborts is that refusal, not the app going away.
  it('fail/a bad chunk once the peer has the request is one refusal, not also a caller abort', async () => {
    const seen = peer.seen.length;
    const before = await badRequests();
    const aborts = async () =>
      (await sidecar.metrics.streamsReset.get()).values.find(
        (v) => v.labels.direction === 'outbound' && v.labels.reason === 'client_aborted',
      )?.value ?? 0;
    const abortsBefore = await aborts();
    const socket = netConnect(sidecar.sidecar.outboundPort, '127.0.0.1');
    const reply = readAll(socket);
    socket.write(`${head}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`);
    const cut = await waitFor('the first chunk at the peer', () =>
      peer.seen.slice(seen).find((s) => s.body === 'hello'),
    );
    socket.write('5 x\r\nhello\r\n0\r\n\r\n');
    expect((await reply).split('\r\n', 1)[0]).toBe('HTTP/1.1 400 Bad Request');
    await waitFor('the peer connection closed', () => peer.closed.has(cut.conn), 5_000);
    await waitFor('the rejection counted', async () => (await badRequests()) === before + 1, 5_000);
    expect(await aborts()).toBe(abortsBefore);
  });

  it.each(FRAMING_ERRORS)(
    '%s → 400 or closed, counted, only the first request reaches the peer and its peer connection is not reused',
    async (_name, rest) => {
      const warm = await send(
        `GET http://${PEER_HOST}/warm HTTP/1.1\r\nHost: ${PEER_HOST}\r\nConnection: close\r\n\r\n`,
      );
      expect(warm.split('\r\n', 1)[0]).toBe('HTTP/1.1 200 OK');
      const seen = peer.seen.length;
      const before = await badRequests();
      const reply = await send(`${head}${rest}`);
      if (reply !== '') expect(reply.split('\r\n', 1)[0]).toBe('HTTP/1.1 400 Bad Request');
      expect(reply).not.toContain('200 OK');
      await waitFor('the rejection counted', async () => (await badRequests()) === before + 1, 5_000);
      const hostile = peer.seen.slice(seen);
      expect(hostile.every((s) => s.url === '/upload' && !s.complete)).toBe(true);
      expect(hostile.length).toBeLessThanOrEqual(1);
      for (const s of hostile) await waitFor('the peer connection closed', () => peer.closed.has(s.conn), 5_000);
      const next = await send(
        `GET http://${PEER_HOST}/after HTTP/1.1\r\nHost: ${PEER_HOST}\r\nConnection: close\r\n\r\n`,
      );
      expect(next.split('\r\n', 1)[0]).toBe('HTTP/1.1 200 OK');
      const after = peer.seen.at(-1);
      expect(after?.url).toBe('/after');
      for (const s of hostile) expect(after?.conn).not.toBe(s.conn);
      expect(peer.seen.some((s) => s.url === '/admin')).toBe(false);
      expect(await badRequests()).toBe(before + 1); // one broken request, one count
    },
  );
});

/** Everything read from `socket` until it closes (latin1); '' when it was reset before a byte. */
function readAll(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
    });
    socket.on('close', () => resolve(text));
    socket.on('error', () => resolve(text));
    socket.setTimeout(5_000, () => socket.destroy());
  });
}

/** Writes raw bytes to a plain TCP port; resolves with everything read until close ('' if reset before a byte). */
function rawExchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const socket = new Socket();
    socket.connect(port, '127.0.0.1', () => socket.write(bytes));
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
    });
    socket.on('close', () => resolve(text));
    socket.on('error', () => resolve(text));
    socket.setTimeout(5_000, () => socket.destroy());
  });
}
