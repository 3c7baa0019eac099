// No TLS session resumption between sidecars. Node skips checkServerIdentity (the SPIFFE ID and SVID rules) on a
// resumed session and OpenSSL does not verify the chain again, so a connection that resumed a session would trust
// a peer certificate checked once, maybe minutes and an expiry ago. The HTTP/2 hop never offered a session; the
// HTTP/1.1 pools (undici) did, and the inbound issued tickets.
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer, type Server, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startApp,
  startTestSidecar,
  type TestApp,
  type TestSidecar,
  testConfig,
  viaProxy,
} from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

describe('TLS session resumption between sidecars', () => {
  let ca: TestCa;
  const closers: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    ca = await TestCa.create();
  });
  afterAll(async () => {
    for (const close of closers.reverse()) await close();
  });

  async function sidecar(id: string, config: ReturnType<typeof testConfig>, extra = {}): Promise<TestSidecar> {
    const started = await startTestSidecar(ca, ca.idFor(id), config, extra);
    closers.push(() => started.sidecar.close(0));
    return started;
  }

  async function app(): Promise<TestApp> {
    const started = await startApp();
    closers.push(() => started.close());
    return started;
  }

  /** A caller whose route to `port` forwards over HTTP/1.1 (`outbound.http2: false`). */
  async function h1Caller(port: number, peerId: string): Promise<TestSidecar> {
    const base = testConfig({ appPort: 1, routes: { 'b.mesh': { address: `127.0.0.1:${port}`, ids: [peerId] } } });
    return sidecar('/ns/a/sa/a', { ...base, outbound: { ...base.outbound, http2: false } });
  }

  it('fail/the HTTP/1.1 pool offers no session: every connection to the peer is a full handshake', async () => {
    const peerId = ca.idFor('/ns/b/sa/b');
    const peer = await ca.issue({ id: peerId });
    const reused: boolean[] = [];
    // An HTTP/1.1 peer that answers one request per connection, so each request needs a new connection.
    const server: Server = createTlsServer({
      cert: peer.chainPem,
      key: peer.keyPem,
      ca: ca.bundlePem,
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['http/1.1'],
    });
    server.on('secureConnection', (socket: TLSSocket) => {
      reused.push(socket.isSessionReused());
      socket.on('error', () => undefined);
      socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => server.close(() => resolve())));
    const caller = await h1Caller((server.address() as AddressInfo).port, peerId);
    for (let i = 0; i < 3; i += 1) {
      expect((await viaProxy(caller.sidecar.outboundPort, `http://b.mesh/${i}`)).status).toBe(200);
    }
    expect(reused).toEqual([false, false, false]);
  });

  it('fail/a peer whose SVID has expired is refused on the next HTTP/1.1 connection (never reaches its app)', async () => {
    const appB = await app();
    const idB = ca.idFor('/ns/b/sa/b');
    // B closes idle connections after 1 s, so the request after the expiry needs a new connection.
    const b = await sidecar('/ns/b/sa/b', testConfig({ appPort: appB.port }), {
      inboundLimits: { sessionIdleTimeoutMs: 1_000, keepAliveTimeoutMs: 1_000 },
    });
    const short = await ca.issue({
      id: idB,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 2_500),
    });
    b.holder.set({ svid: short.svid, bundle: ca.bundle });
    const caller = await h1Caller(b.sidecar.inboundPort, idB);
    expect((await viaProxy(caller.sidecar.outboundPort, 'http://b.mesh/before')).status).toBe(200);
    const expiresAt = short.leaf.notAfter.getTime();
    // A fixed wait on purpose: wall-clock time must pass the certificate's notAfter (nothing to observe before it).
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt - Date.now()) + 1_500));
    const seen = appB.seen.length;
    const after = await viaProxy(caller.sidecar.outboundPort, 'http://b.mesh/after-expiry');
    expect(after.status).toBe(503);
    expect(JSON.parse(after.body).code).toBe('MESHAUTH_ERR_PEER_UNAVAILABLE');
    expect(appB.seen.length).toBe(seen);
  });

  it('fail/the inbound issues no session a client could resume', async () => {
    const appB = await app();
    const b = await sidecar('/ns/b/sa/b', testConfig({ appPort: appB.port }));
    const client = await ca.issue({ id: ca.idFor('/ns/a/sa/a') });
    const options = {
      host: '127.0.0.1',
      port: b.sidecar.inboundPort,
      cert: client.chainPem,
      key: client.keyPem,
      ca: ca.bundlePem,
      ALPNProtocols: ['http/1.1'],
      checkServerIdentity: () => undefined,
    };
    // A TLS 1.3 server sends its tickets after the handshake: read a whole response so they have arrived.
    const first = tlsConnect(options);
    const sessions: Buffer[] = [];
    first.on('session', (session: Buffer) => sessions.push(session));
    await new Promise<void>((resolve, reject) => {
      first.once('secureConnect', () => first.write('GET / HTTP/1.1\r\nhost: b\r\nconnection: close\r\n\r\n'));
      first.on('data', () => undefined);
      first.once('end', resolve);
      first.once('error', reject);
    });
    first.destroy();
    // With tickets off, OpenSSL still sends TLS 1.3 tickets naming a session in the server's cache; Node keeps no
    // such cache without 'newSession' listeners, so none of them can be resumed.
    expect(sessions.length).toBeGreaterThan(0);
    const second = tlsConnect({ ...options, session: sessions.at(-1) as Buffer });
    await new Promise<void>((resolve, reject) => {
      second.once('secureConnect', resolve);
      second.once('error', reject);
    });
    expect(second.isSessionReused()).toBe(false);
    second.destroy();
  });
});
