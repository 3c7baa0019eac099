// An HTTP/2 client of the gateway's public listener that stops answering must not hold its connection until the idle
// timeout (found by a probe, 2026-12-07). nghttp2 refuses some frames without a word to node:http2 (a DATA frame over
// the frame size, DATA on stream 0, a PING of the wrong length, an undecodable header block): it sends GOAWAY and
// stops reading the session, so its streams in flight never ended, their answers went nowhere, and the connection kept
// its place under maxConnections and its address's share for the 120 s idle timeout, counted and logged nowhere. A
// client gone silent with a stream open (reading and sending nothing) was held the same way. Now a stream idle for
// streamIdleCheckMs asks the session for a PING; unacknowledged within silentSessionGraceMs the session is destroyed,
// counted in meshauth_connections_rejected_total{direction="edge",reason="silent_session"} with one warn line (on Node
// 20; Node 24's node:http2 reports those frames itself, and the session ends at once as h2_protocol_error). Frames
// node:http2 does hear of (WINDOW_UPDATE of 0, an even stream id, a header block past nghttp2's bound) were already
// torn down at once as h2_protocol_error (gateway-h2-large-header-block.test.ts).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type Http2ServerRequest, type Http2ServerResponse, connect as h2Connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PublicListener } from '../../src/gateway/public-listener.js';
import { refuseStream } from '../../src/sidecar/refused-stream.js';
import { Metrics } from '../../src/telemetry/index.js';
import { type LogLines, logLines } from '../helpers/log-lines.js';
import { h2Frame, type RawH2Client, rawH2Client } from '../helpers/raw-h2-client.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

const DATA = 0x0;
const HEADERS = 0x1;
const PING = 0x6;
const GOAWAY = 0x7;
const END_HEADERS = 0x4;
const END_STREAM = 0x1;
const PROTOCOL_ERROR = 0x1;
const FRAME_SIZE_ERROR = 0x6;
const COMPRESSION_ERROR = 0x9;
/**
 * Node 20's node:http2 hears nothing of these frames, and only the PING check ends the session; Node 24's reports a
 * session error at once (measured), torn down as any protocol breach.
 */
const MALFORMED_FRAME_REASON =
  Number(process.versions.node.split('.')[0]) >= 24 ? 'h2_protocol_error' : 'silent_session';
/** Far past any wait below: a connection closed in time was not closed by the idle timeout. */
const IDLE_TIMEOUT_MS = 120_000;

describe('gateway public listener: an HTTP/2 client that stops answering', () => {
  let ca: TestCa;
  let dir: string;
  let listener: PublicListener;
  let metrics: Metrics;
  let log: LogLines;
  /** Paths of the requests the edge was handed, and of those whose stream has closed since. */
  const handed = new Set<string>();
  const closed = new Set<string>();
  /** Answers held until the test releases them (a service still working). */
  const held = new Map<string, Http2ServerResponse>();
  const clients: RawH2Client[] = [];

  beforeAll(async () => {
    ca = await TestCa.create();
    dir = mkdtempSync(join(tmpdir(), 'meshauth-silent-client-'));
    const server = await ca.issue({ id: ca.idFor('/ns/edge/sa/public'), dnsNames: ['localhost'] });
    writeFileSync(join(dir, 'tls.crt'), server.chainPem);
    writeFileSync(join(dir, 'tls.key'), server.keyPem, { mode: 0o600 });
  });
  // A listener per test: each test sees its own counts and its own (rate-limited) log lines.
  beforeEach(async () => {
    metrics = new Metrics();
    log = logLines('gateway');
    listener = new PublicListener({
      listen: { host: '127.0.0.1', port: 0 },
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      maxHeaderBytes: 16 * 1024,
      logger: log.logger,
      metrics,
      // One connection per address: the next connection from 127.0.0.1 is served only once the last one let go.
      limits: {
        maxConnectionsPerAddress: 1,
        idleTimeoutMs: IDLE_TIMEOUT_MS,
        streamIdleCheckMs: 200,
        silentSessionGraceMs: 300,
      },
      onRequest: (req: Http2ServerRequest, res: Http2ServerResponse) => {
        const path = req.url;
        handed.add(path);
        req.stream.once('close', () => closed.add(path));
        req.resume();
        if (path === '/fast') res.end('ok');
        else if (path.startsWith('/refused'))
          refuseStream(req.stream); // a stream the edge resets
        else held.set(path, res); // /slow…: a service that has not answered yet
      },
    });
    await listener.listen();
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    for (const res of held.values()) res.stream.destroy();
    held.clear();
    await listener?.close(Date.now());
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /**
   * Connections closed for each reason, and the warn lines written for them; but per_address, which the test's own
   * tries of served() may meet while the client's connection is still open.
   */
  const closedFor = async () => {
    const counted: Record<string, number> = {};
    for (const v of (await metrics.connectionsRejected.get()).values) {
      if (v.labels.direction === 'edge' && v.value > 0 && v.labels.reason !== 'per_address') {
        counted[String(v.labels.reason)] = v.value;
      }
    }
    const lines = log
      .find({ event: 'gateway_connection_closed' })
      .map((line) => line.reason)
      .filter((reason) => reason !== 'per_address');
    return { counted, lines };
  };
  const silentSessions = async () => (await closedFor()).counted.silent_session ?? 0;

  /** A request on a new connection from 127.0.0.1 is answered: the address's one place is free. */
  const served = () =>
    new Promise<boolean>((resolve) => {
      const session = h2Connect(`https://127.0.0.1:${listener.port}`, { ca: ca.rootPem, servername: 'localhost' });
      const done = (ok: boolean) => {
        session.destroy();
        resolve(ok);
      };
      session.on('error', () => done(false));
      const request = session.request({ ':path': '/fast' });
      request.on('error', () => done(false));
      request.on('response', (headers) => done(headers[':status'] === 200));
      request.on('close', () => done(false));
      request.end();
    });

  async function connected(): Promise<RawH2Client> {
    const client = await rawH2Client(listener.port, ca.rootPem);
    clients.push(client);
    return client;
  }
  const fields = (method: string, path: string) =>
    [
      [':method', method],
      [':scheme', 'https'],
      [':authority', 'localhost'],
      [':path', path],
    ] as const;

  it('fail/a client that opens a stream, then reads and sends nothing → its session destroyed, counted and logged once, its place freed', async () => {
    const client = await connected();
    client.headers(1, fields('GET', '/slow-silent'), true);
    await waitFor('the request handed to the edge', () => handed.has('/slow-silent'));
    client.socket.pause(); // the server's PING is never read, let alone acknowledged
    await waitFor('its stream closed at the gateway', () => closed.has('/slow-silent'), 10_000);
    await waitFor('a new connection from the same address served', served, 10_000, 100);
    expect(await closedFor()).toEqual({ counted: { silent_session: 1 }, lines: ['silent_session'] });
  }, 30_000);

  it.each([
    ['a DATA frame over the frame size', FRAME_SIZE_ERROR, h2Frame(DATA, 0, 1, Buffer.alloc(20_000))],
    ['DATA on stream 0', PROTOCOL_ERROR, h2Frame(DATA, 0, 0, Buffer.from('x'))],
    ['a PING of 7 bytes', FRAME_SIZE_ERROR, h2Frame(PING, 0, 0, Buffer.alloc(7))],
    // An indexed field past the end of the static table and an empty dynamic table.
    [
      'an undecodable header block',
      COMPRESSION_ERROR,
      h2Frame(HEADERS, END_HEADERS | END_STREAM, 5, Buffer.from([0xff, 0x49])),
    ],
  ] as const)(
    'fail/%s mid-session → GOAWAY, its streams in flight closed, the connection closed, counted and logged once',
    async (name, code, frame) => {
      const slug = name.replaceAll(' ', '-');
      const upload = `/slow-upload-${slug}`;
      const get = `/slow-get-${slug}`;
      const client = await connected();
      client.headers(1, fields('POST', upload));
      client.data(1, 'x');
      client.headers(3, fields('GET', get), true);
      await waitFor('both requests handed to the edge', () => handed.has(upload) && handed.has(get));
      client.socket.write(frame);
      const goaway = await waitFor('GOAWAY', () => client.received.find((f) => f.type === GOAWAY));
      expect(goaway.payload.readUInt32BE(4)).toBe(code);
      await waitFor('both streams closed at the gateway', () => closed.has(upload) && closed.has(get), 10_000);
      await waitFor('the connection closed by the gateway', () => client.socket.destroyed, 10_000);
      await waitFor('a new connection from the same address served', served, 10_000, 100);
      expect(await closedFor()).toEqual({ counted: { [MALFORMED_FRAME_REASON]: 1 }, lines: [MALFORMED_FRAME_REASON] });
    },
    30_000,
  );

  it('ok/a client that acknowledges PINGs keeps its session while its request waits past the check, then gets the answer', async () => {
    const session = h2Connect(`https://127.0.0.1:${listener.port}`, { ca: ca.rootPem, servername: 'localhost' });
    session.on('error', () => undefined);
    let pings = 0;
    session.on('ping', () => {
      pings += 1;
    });
    try {
      const request = session.request({ ':method': 'POST', ':path': '/slow-live' });
      request.on('error', () => undefined);
      const answer = new Promise<number>((resolve) => request.on('response', (h) => resolve(Number(h[':status']))));
      request.write('a');
      await waitFor('the request handed to the edge', () => handed.has('/slow-live'));
      await waitFor('a first PING from the gateway', () => pings >= 1, 10_000);
      // A second check starts only once the first ended, and a first left unacknowledged would have destroyed the
      // session: a second PING after more of the upload says the first was acknowledged and the session kept.
      request.write('b');
      await waitFor('a second PING from the gateway', () => pings >= 2, 10_000);
      held.get('/slow-live')?.end('done');
      request.end();
      expect(await answer).toBe(200);
      expect(session.destroyed).toBe(false);
      expect(await silentSessions()).toBe(0);
    } finally {
      session.destroy();
    }
  }, 30_000);

  it('ok/a client that acknowledges PINGs keeps its session when the edge resets its streams', async () => {
    const session = h2Connect(`https://127.0.0.1:${listener.port}`, { ca: ca.rootPem, servername: 'localhost' });
    session.on('error', () => undefined);
    let pings = 0;
    session.on('ping', () => {
      pings += 1;
    });
    const ask = (path: string) =>
      new Promise<number | string>((resolve) => {
        const request = session.request({ ':path': path });
        request.on('response', (h) => resolve(Number(h[':status'])));
        request.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
        request.end();
      });
    try {
      expect(await ask('/refused-1')).toBe('ERR_HTTP2_STREAM_ERROR');
      await waitFor('a first PING from the gateway', () => pings >= 1, 10_000);
      // As above: a second PING says the first was acknowledged and the session kept.
      expect(await ask('/refused-2')).toBe('ERR_HTTP2_STREAM_ERROR');
      await waitFor('a second PING from the gateway', () => pings >= 2, 10_000);
      expect(await ask('/fast')).toBe(200);
      expect(await silentSessions()).toBe(0);
    } finally {
      session.destroy();
    }
  }, 30_000);
});
