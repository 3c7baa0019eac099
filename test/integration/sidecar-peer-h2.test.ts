// The outbound side's connection to a peer sidecar: one node:http2 session per peer, HTTP/1.1 fallback when the peer's
// ALPN says so, a new session after GOAWAY, 504 on a silent peer, a cut (never completed) response when the peer resets
// the stream mid-body, and `outbound.http2: false`.

import { constants, createSecureServer, type Http2SecureServer, type ServerHttp2Stream } from 'node:http2';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogger, metricValue } from '../helpers/fault-harness.js';
import {
  type SidecarPair,
  startPair,
  startTestSidecar,
  type TestSidecar,
  testConfig,
  viaProxy,
} from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

type FakePeer = (stream: ServerHttp2Stream, sessionNumber: number) => void;

describe('outbound peer connections', () => {
  let ca: TestCa;
  let peerId: string;
  let tlsOptions: { cert: string; key: string; ca: string; requestCert: true; rejectUnauthorized: true };
  const servers: (Http2SecureServer | HttpsServer)[] = [];
  const clients: TestSidecar[] = [];
  let h1Pair: SidecarPair;

  beforeAll(async () => {
    ca = await TestCa.create();
    peerId = ca.idFor('/ns/b/sa/b');
    const peer = await ca.issue({ id: peerId });
    tlsOptions = {
      cert: peer.chainPem,
      key: peer.keyPem,
      ca: ca.bundlePem,
      requestCert: true,
      rejectUnauthorized: true,
    };
    h1Pair = await startPair(ca);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.sidecar.close(0)));
    await h1Pair?.close();
    for (const server of servers) server.close();
  });

  async function listen(server: Http2SecureServer | HttpsServer): Promise<number> {
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as { port: number }).port;
  }

  async function fakeH2Peer(handler: FakePeer): Promise<{ port: number; sessions: () => number }> {
    let sessions = 0;
    const server = createSecureServer({ ...tlsOptions, ALPNProtocols: ['h2'] });
    server.on('session', () => sessions++);
    server.on('stream', (stream) => {
      stream.on('error', () => undefined); // the resets below are deliberate
      handler(stream, sessions);
    });
    return { port: await listen(server), sessions: () => sessions };
  }

  async function clientTo(port: number, outboundTimeout?: string): Promise<number> {
    const config = testConfig({
      appPort: 1,
      routes: { 'b.mesh': { address: `127.0.0.1:${port}`, ids: [peerId] } },
      ...(outboundTimeout === undefined ? {} : { outboundTimeout }),
    });
    const client = await startTestSidecar(ca, ca.idFor('/ns/a/sa/a'), config);
    clients.push(client);
    return client.sidecar.outboundPort;
  }

  it('ok/a peer whose ALPN is http/1.1 only is served over HTTP/1.1', async () => {
    const server = createHttpsServer({ ...tlsOptions, ALPNProtocols: ['http/1.1'] }, (req, res) =>
      res.end(`http ${req.httpVersion}`),
    );
    const outbound = await clientTo(await listen(server));
    for (const path of ['/one', '/two']) {
      const res = await viaProxy(outbound, `http://b.mesh${path}`);
      expect(res.status).toBe(200);
      expect(res.body).toBe('http 1.1');
    }
  });

  it('ok/after the peer sends GOAWAY the next request opens a new session', async () => {
    const peer = await fakeH2Peer((stream, session) => {
      stream.respond({ ':status': 200 });
      stream.end(`session ${session}`);
      stream.session?.close(); // graceful GOAWAY once this stream is done
    });
    const outbound = await clientTo(peer.port);
    const first = await viaProxy(outbound, 'http://b.mesh/1');
    const second = await viaProxy(outbound, 'http://b.mesh/2');
    expect([first.status, first.body]).toEqual([200, 'session 1']);
    expect([second.status, second.body]).toEqual([200, 'session 2']);
    expect(peer.sessions()).toBe(2);
  });

  it('ok/concurrent requests share one session', async () => {
    const peer = await fakeH2Peer((stream, session) => {
      stream.respond({ ':status': 200 });
      stream.end(`session ${session}`);
    });
    const outbound = await clientTo(peer.port);
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => viaProxy(outbound, `http://b.mesh/${i}`)));
    expect(results.map((r) => r.body)).toEqual(Array(8).fill('session 1'));
    expect(peer.sessions()).toBe(1);
  });

  it('fail/a peer that never answers → 504 MESHAUTH_ERR_UPSTREAM_TIMEOUT', async () => {
    const peer = await fakeH2Peer(() => undefined);
    const outbound = await clientTo(peer.port, '300ms');
    const res = await viaProxy(outbound, 'http://b.mesh/silent');
    expect(res.status).toBe(504);
    expect(JSON.parse(res.body).code).toBe('MESHAUTH_ERR_UPSTREAM_TIMEOUT');
  });

  it('fail/a peer that resets the stream before answering → 503 MESHAUTH_ERR_PEER_UNAVAILABLE', async () => {
    const peer = await fakeH2Peer((stream) => stream.close(constants.NGHTTP2_REFUSED_STREAM));
    const outbound = await clientTo(peer.port);
    const res = await viaProxy(outbound, 'http://b.mesh/reset');
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body).code).toBe('MESHAUTH_ERR_PEER_UNAVAILABLE');
  });

  it('fail/a peer that resets the stream mid-body → the response is cut, never completed', async () => {
    const peer = await fakeH2Peer((stream) => {
      stream.respond({ ':status': 200, 'content-length': '100' });
      stream.write('partial', () => stream.close(constants.NGHTTP2_INTERNAL_ERROR));
    });
    const outbound = await clientTo(peer.port);
    await expect(viaProxy(outbound, 'http://b.mesh/cut')).rejects.toThrow();
  });

  it('ok/outbound.http2 false → the peer sidecar sees HTTP/1.1', async () => {
    const base = testConfig({
      appPort: 1,
      routes: { 'b.mesh': { address: `127.0.0.1:${h1Pair.b.sidecar.inboundPort}`, ids: [h1Pair.b.svid.id] } },
    });
    const client = await startTestSidecar(ca, ca.idFor('/ns/a/sa/a'), {
      ...base,
      outbound: { ...base.outbound, http2: false },
    });
    clients.push(client);
    const res = await viaProxy(client.sidecar.outboundPort, 'http://b.mesh/h1');
    expect(res.status).toBe(200);
    expect(h1Pair.appB.seen.at(-1)?.url).toBe('/h1');
  });

  it("ok/outbound.http2 false → every request is counted with the peer's SPIFFE ID, the first one too", async () => {
    const base = testConfig({
      appPort: 1,
      routes: { 'b.mesh': { address: `127.0.0.1:${h1Pair.b.sidecar.inboundPort}`, ids: [h1Pair.b.svid.id] } },
    });
    const client = await startTestSidecar(ca, ca.idFor('/ns/a/sa/a'), {
      ...base,
      outbound: { ...base.outbound, http2: false },
    });
    clients.push(client);
    for (const path of ['/first', '/second']) {
      expect((await viaProxy(client.sidecar.outboundPort, `http://b.mesh${path}`)).status).toBe(200);
    }
    const counted = (peer: string) =>
      metricValue(client, 'meshauth_requests_total', `direction="outbound",peer_id="${peer}",code="200"`);
    expect(await counted(h1Pair.b.svid.id)).toBe(2);
    expect(await counted('')).toBe(0);
  });

  it("fail/outbound.http2 false → the first request's rejection line names the peer that took it", async () => {
    // An HTTP/1.1 peer that accepts the request and never answers: 504 once the outbound timeout passes.
    const server = createHttpsServer({ ...tlsOptions, ALPNProtocols: ['http/1.1'] }, () => undefined);
    const port = await listen(server);
    const log = captureLogger('a');
    const base = testConfig({
      appPort: 1,
      routes: { 'b.mesh': { address: `127.0.0.1:${port}`, ids: [peerId] } },
      outboundTimeout: '300ms',
    });
    const client = await startTestSidecar(
      ca,
      ca.idFor('/ns/a/sa/a'),
      { ...base, outbound: { ...base.outbound, http2: false } },
      { logger: log.logger },
    );
    clients.push(client);
    expect((await viaProxy(client.sidecar.outboundPort, 'http://b.mesh/silent')).status).toBe(504);
    const rejected = log.records().filter((r) => r.msg?.toString().startsWith('request rejected'));
    expect(rejected.map((r) => [r.code, r.peer])).toEqual([['MESHAUTH_ERR_UPSTREAM_TIMEOUT', peerId]]);
    expect(
      await metricValue(client, 'meshauth_requests_total', `direction="outbound",peer_id="${peerId}",code="504"`),
    ).toBe(1);
  });
});
