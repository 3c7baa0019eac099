// A peer's X509-SVID is checked at the handshake; a connection kept busy used to outlive it, so an identity the CA
// stopped renewing (how the mesh revokes one) kept its access as long as it kept one connection open (found by an
// outside audit). Now requests after the peer's notAfter are refused (401 MESHAUTH_ERR_SVID_EXPIRED) and the
// connection is retired at that moment: HTTP/2 gets GOAWAY, an idle HTTP/1.1 connection is closed.
import { createServer, type Server } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mtlsH2Session } from '../helpers/raw-app.js';
import { startTestSidecar, type TestSidecar, testConfig } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';
import { eventually, waitFor } from '../helpers/wait.js';

const SVID_TTL_MS = 2_500;
const POLL_MS = 250;

describe('inbound: a peer whose SVID expires while its connection is open', () => {
  let ca: TestCa;
  let app: Server;
  let sidecar: TestSidecar;
  /** When each request of the short-lived identity reached the app. */
  const arrivals: number[] = [];

  beforeAll(async () => {
    ca = await TestCa.create('example.org');
    app = createServer((req, res) => {
      if (String(req.headers['x-forwarded-client-cert']).includes('/sa/short-lived')) arrivals.push(Date.now());
      req.resume();
      res.end('ok');
    });
    await new Promise<void>((done) => app.listen(0, '127.0.0.1', done));
    sidecar = await startTestSidecar(
      ca,
      ca.idFor('/ns/shop/sa/server'),
      testConfig({ appPort: (app.address() as AddressInfo).port }),
    );
  });
  afterAll(async () => {
    await sidecar?.sidecar.close(0);
    app?.closeAllConnections();
    await new Promise((done) => app?.close(done));
  });

  it('ok/h2: the session gets GOAWAY at the notAfter, and no request after it reaches the app', async () => {
    arrivals.length = 0;
    const client = await ca.issue({ id: ca.idFor('/ns/shop/sa/short-lived'), ttlMs: SVID_TTL_MS });
    const notAfter = client.leaf.notAfter.getTime();
    const session = await mtlsH2Session(sidecar.sidecar.inboundPort, client, ca.bundlePem);
    let goawayAt: number | undefined;
    session.on('goaway', () => {
      goawayAt ??= Date.now();
    });
    const get = () =>
      new Promise<number>((resolve) => {
        const stream = session.request({ ':method': 'GET', ':path': '/' }, { endStream: true });
        let status = -1;
        stream.on('response', (headers: IncomingHttpHeaders) => {
          status = Number(headers[':status']);
        });
        stream.on('error', () => undefined);
        stream.on('close', () => resolve(status));
        stream.resume();
      });
    try {
      expect(await get()).toBe(200);
      // Keep the session busy (well inside every idle limit) until it is told to go, bounded.
      await waitFor(
        'a GOAWAY or the session closed',
        async () => {
          if (goawayAt !== undefined || session.closed) return true;
          await get();
          return false;
        },
        10_000,
        POLL_MS,
      ).catch(() => undefined); // the expectations below say what was missing
      expect(goawayAt, 'GOAWAY at the notAfter').toBeDefined();
      expect(goawayAt as number).toBeGreaterThanOrEqual(notAfter - 50);
      expect(arrivals.length).toBeGreaterThan(0);
      // Timers and the handshake clock have millisecond resolution; nothing got through well past the notAfter.
      expect(Math.max(...arrivals)).toBeLessThan(notAfter + 100);
      expect(await sidecar.metrics.registry.metrics()).toMatch(
        /meshauth_connections_rejected_total\{direction="inbound",reason="peer_svid_expired"\} 1\n/,
      );
    } finally {
      session.destroy();
    }
  });

  it('ok/HTTP/1.1: an idle keep-alive connection is closed at the notAfter of the peer SVID', async () => {
    arrivals.length = 0;
    const client = await ca.issue({ id: ca.idFor('/ns/shop/sa/short-lived'), ttlMs: SVID_TTL_MS });
    const notAfter = client.leaf.notAfter.getTime();
    const socket = tlsConnect({
      port: sidecar.sidecar.inboundPort,
      host: '127.0.0.1',
      cert: client.chainPem,
      key: client.keyPem,
      ca: [ca.bundlePem],
      ALPNProtocols: ['http/1.1'],
      checkServerIdentity: () => undefined,
    });
    socket.on('error', () => undefined);
    let received = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => {
      received += chunk;
    });
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
    await new Promise<void>((done) => socket.once('secureConnect', () => done()));
    socket.write('GET / HTTP/1.1\r\nHost: server\r\n\r\n');
    await eventually(() => received.includes('\r\n\r\nok'), 1_000);
    expect(received).toMatch(/^HTTP\/1\.1 200/);
    const closedAt = await closed;
    expect(closedAt).toBeGreaterThanOrEqual(notAfter - 50);
    expect(await sidecar.metrics.registry.metrics()).toMatch(
      /meshauth_connections_rejected_total\{direction="inbound",reason="peer_svid_expired"\} 2\n/,
    );
    expect(arrivals.length).toBe(1);
  });
});
