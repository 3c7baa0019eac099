// The silent-session check must not take a slow link for a silent client (found by a review, 2026-12-07). A PING
// waits behind every byte already queued toward the client: under a large download on a slow link its ACK came back
// 6–14 s later, past the 5 s grace, and the gateway destroyed a session that was plainly working, the download with
// it, counted as silent_session. Now a grace that runs out while something moved on the session (a frame from the
// client, bytes handed to the connection, nghttp2's windows) is extended; only a session where nothing moved is
// silent. Here the check comes after 200 ms idle with a 3 s grace, and the link is slow enough that a PING's round
// trip takes longer than that.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type Http2ServerRequest, type Http2ServerResponse, connect as h2Connect } from 'node:http2';
import {
  type AddressInfo,
  createServer as createNetServer,
  connect as netConnect,
  type Server,
  type Socket,
} from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PublicListener } from '../../src/gateway/public-listener.js';
import { Metrics } from '../../src/telemetry/index.js';
import { logLines } from '../helpers/log-lines.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

/** Bytes a second toward the client: an 8 Mbit/s link, with loopback's deep send buffers in front of it. */
const RATE = 1024 * 1024;
/** Longer than the gaps between the moments the download visibly moves at this rate (about 1.5 s), shorter than a PING's round trip. */
const GRACE_MS = 3_000;
/** Larger than the link can carry while the test watches: the download is still running at the end. */
const DOWNLOAD_BYTES = 64 * 1024 * 1024;

describe('gateway public listener: a live HTTP/2 client on a slow link', () => {
  let ca: TestCa;
  let dir: string;
  let listener: PublicListener;
  let metrics: Metrics;
  let relay: Server;
  const sockets = new Set<Socket>();
  const quiet: Http2ServerResponse[] = [];

  beforeAll(async () => {
    ca = await TestCa.create();
    dir = mkdtempSync(join(tmpdir(), 'meshauth-slow-link-'));
    const server = await ca.issue({ id: ca.idFor('/ns/edge/sa/public'), dnsNames: ['localhost'] });
    writeFileSync(join(dir, 'tls.crt'), server.chainPem);
    writeFileSync(join(dir, 'tls.key'), server.keyPem, { mode: 0o600 });
    metrics = new Metrics();
    listener = new PublicListener({
      listen: { host: '127.0.0.1', port: 0 },
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      maxHeaderBytes: 16 * 1024,
      logger: logLines('gateway').logger,
      metrics,
      limits: { streamIdleCheckMs: 200, silentSessionGraceMs: GRACE_MS },
      onRequest: (req: Http2ServerRequest, res: Http2ServerResponse) => {
        req.resume();
        if (req.url === '/events') {
          // A server-sent-events channel with nothing more to say: its stream goes idle and asks for the check.
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write('data: hello\n\n');
          quiet.push(res);
          return;
        }
        const chunk = Buffer.alloc(64 * 1024, 120);
        let sent = 0;
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(DOWNLOAD_BYTES) });
        const pump = (): void => {
          while (sent < DOWNLOAD_BYTES && !res.destroyed) {
            sent += chunk.length;
            if (!res.write(chunk)) {
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        pump();
      },
    });
    await listener.listen();
    // The slow link: everything toward the client at RATE, the other way at once.
    relay = createNetServer((client) => {
      const upstream = netConnect(listener.port, '127.0.0.1');
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('error', () => undefined);
        socket.once('close', () => {
          sockets.delete(socket);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.on('data', (chunk: Buffer) => {
        upstream.pause();
        client.write(chunk);
        setTimeout(() => upstream.resume(), (chunk.length / RATE) * 1000);
      });
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    for (const res of quiet) res.stream.destroy();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => relay?.close(resolve));
    await listener?.close(Date.now());
    rmSync(dir, { recursive: true, force: true });
  });

  it('ok/a download with a quiet stream beside it, the PING answered seconds late → the session is kept', async () => {
    const session = h2Connect(`https://127.0.0.1:${(relay.address() as AddressInfo).port}`, {
      ca: ca.rootPem,
      servername: 'localhost',
      // A browser's windows (6 MiB per stream, 15 MiB per connection): the gateway may queue that much ahead.
      settings: { initialWindowSize: 6 * 1024 * 1024 },
    });
    session.on('error', () => undefined);
    session.once('connect', () => session.setLocalWindowSize(15 * 1024 * 1024));
    let closed = false;
    session.once('close', () => {
      closed = true;
    });
    let pingsFromGateway = 0;
    session.on('ping', () => {
      pingsFromGateway += 1;
    });
    const events = session.request({ ':path': '/events' });
    events.on('error', () => undefined);
    events.resume();
    let received = 0;
    const download = session.request({ ':path': '/download' });
    download.on('error', () => undefined);
    download.on('data', (chunk: Buffer) => {
      received += chunk.length;
    });
    // Once the /events stream had been idle 200 ms the gateway sent its PING, behind the queued download: it arrives
    // here seconds later (and its ACK goes back at once). The scenario holds when a PING's round trip on this link is
    // longer than the grace: the session would have been destroyed before that ACK.
    await waitFor('the PING of the gateway arrived', () => pingsFromGateway > 0, 30_000);
    const roundTripMs = await new Promise<number>((resolve, reject) =>
      session.ping((error, duration) => (error === null ? resolve(duration) : reject(error))),
    );
    expect(roundTripMs).toBeGreaterThan(GRACE_MS);
    const receivedThen = received;
    await waitFor('more of the download arrived', () => received > receivedThen + 512 * 1024, 20_000);
    expect(closed).toBe(false);
    const rejected = (await metrics.connectionsRejected.get()).values.filter((v) => v.value > 0);
    expect(rejected.map((v) => [v.labels.reason, v.value])).toEqual([]);
    session.destroy();
  }, 40_000);
});
