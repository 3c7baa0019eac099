// Faults and hostile HTTP on the data path (an app down or cut off, malformed requests and framing): every case gets
// its JSON error (or parser-level refusal), a metric, and the sidecar stays up.
import { createServer as createNetServer, type Server as NetServer, Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type InboundServer,
  type SidecarPair,
  startApp,
  startInboundServer,
  startPair,
  startTestSidecar,
  type TestApp,
  type TestSidecar,
  testConfig,
  viaProxy,
} from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';

describe('outbound faults', () => {
  let ca: TestCa;
  let pair: SidecarPair;
  let slowPair: SidecarPair;
  let wrongId: SidecarPair;
  let echo: NetServer;
  let echoPort: number;

  beforeAll(async () => {
    ca = await TestCa.create();
    pair = await startPair(ca, { egress: ['api.example.test'] });
    slowPair = await startPair(ca, {
      appTimeout: '300ms',
      appHandler: (req, res) => {
        if (req.url === '/slow') return; // never answers: the inbound times out
        res.end('ok');
      },
    });
    wrongId = await startPair(ca, { routeIds: [ca.idFor('/ns/shop/sa/someone-else')] });
    echo = createNetServer((socket) => socket.pipe(socket));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    echoPort = (echo.address() as { port: number }).port;
  });
  afterAll(async () => {
    await Promise.all([pair?.close(), slowPair?.close(), wrongId?.close()]);
    await new Promise((resolve) => echo?.close(resolve));
  });

  it('fail/app down → 503 MESHAUTH_ERR_UPSTREAM_UNAVAILABLE as JSON', async () => {
    const app = await startApp();
    const port = app.port;
    await app.close();
    const down = await startTestSidecar(ca, ca.idFor('/ns/x/sa/down'), testConfig({ appPort: port }));
    const client = await startTestSidecar(
      ca,
      ca.idFor('/ns/x/sa/client'),
      testConfig({ appPort: 1, routes: { 'down.mesh': { address: `127.0.0.1:${down.sidecar.inboundPort}` } } }),
    );
    try {
      const res = await viaProxy(client.sidecar.outboundPort, 'http://down.mesh/x');
      expect(res.status).toBe(503);
      expect(res.headers['content-type']).toBe('application/json');
      expect(JSON.parse(res.body)).toEqual({
        code: 'MESHAUTH_ERR_UPSTREAM_UNAVAILABLE',
        message: 'upstream unavailable',
      });
      const rejected = await down.metrics.registry.getSingleMetricAsString('meshauth_requests_rejected_total');
      expect(rejected).toContain('direction="inbound",code="MESHAUTH_ERR_UPSTREAM_UNAVAILABLE"');
    } finally {
      await client.sidecar.close(0);
      await down.sidecar.close(0);
    }
  });

  it('fail/app slow → 504 MESHAUTH_ERR_UPSTREAM_TIMEOUT', async () => {
    const res = await viaProxy(slowPair.a.sidecar.outboundPort, 'http://b.mesh/slow');
    expect(res.status).toBe(504);
    expect(JSON.parse(res.body).code).toBe('MESHAUTH_ERR_UPSTREAM_TIMEOUT');
    const ok = await viaProxy(slowPair.a.sidecar.outboundPort, 'http://b.mesh/fast');
    expect(ok.status).toBe(200);
  });

  it('fail/peer presents another SPIFFE ID → 502 MESHAUTH_ERR_PEER_IDENTITY, app not called', async () => {
    const res = await viaProxy(wrongId.a.sidecar.outboundPort, 'http://b.mesh/x');
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body).code).toBe('MESHAUTH_ERR_PEER_IDENTITY');
    expect(wrongId.appB.seen).toHaveLength(0);
    const rejected = await wrongId.a.metrics.registry.getSingleMetricAsString('meshauth_requests_rejected_total');
    expect(rejected).toContain('direction="outbound",code="MESHAUTH_ERR_PEER_IDENTITY"');
    const refused = await wrongId.a.metrics.registry.getSingleMetricAsString('meshauth_tls_handshake_failures_total');
    expect(refused).toMatch(/direction="outbound",reason="peer_id_mismatch"} [1-9]/);
  });

  it('fail/peer unreachable → 503 MESHAUTH_ERR_PEER_UNAVAILABLE', async () => {
    const gone = await startApp();
    await gone.close();
    const client = await startTestSidecar(
      ca,
      ca.idFor('/ns/x/sa/client'),
      testConfig({ appPort: 1, routes: { 'gone.mesh': { address: `127.0.0.1:${gone.port}` } } }),
    );
    try {
      const res = await viaProxy(client.sidecar.outboundPort, 'http://gone.mesh/x');
      expect(res.status).toBe(503);
      expect(JSON.parse(res.body).code).toBe('MESHAUTH_ERR_PEER_UNAVAILABLE');
      const refused = await client.metrics.registry.getSingleMetricAsString('meshauth_tls_handshake_failures_total');
      expect(refused, 'a refused connection is no handshake failure').not.toContain('direction="outbound"');
    } finally {
      await client.sidecar.close(0);
    }
  });

  it('fail/no credentials yet → outbound 503 MESHAUTH_ERR_NOT_READY', async () => {
    const { CredentialHolder } = await import('../../src/agent/credential-holder.js');
    const { startSidecar } = await import('../../src/sidecar/index.js');
    const { Metrics, silentLogger } = await import('../../src/telemetry/index.js');
    const empty = await startSidecar(testConfig({ appPort: 1, routes: { 'b.mesh': { address: '127.0.0.1:1' } } }), {
      logger: silentLogger(),
      metrics: new Metrics(),
      holder: new CredentialHolder(),
    });
    try {
      expect(empty.ready()).toBe(false);
      const res = await viaProxy(empty.outboundPort, 'http://b.mesh/x');
      expect(res.status).toBe(503);
      expect(JSON.parse(res.body).code).toBe('MESHAUTH_ERR_NOT_READY');
    } finally {
      await empty.close(0);
    }
  });

  it('fail/CONNECT to loopback is refused whatever egress lists (never around the local sidecar)', async () => {
    const reply = await rawExchange(
      pair.a.sidecar.outboundPort,
      `CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\nHost: 127.0.0.1:${echoPort}\r\n\r\n`,
    );
    expect(reply).toMatch(/^HTTP\/1\.1 403/);
    expect(reply).toContain('"code":"MESHAUTH_ERR_EGRESS_FORBIDDEN"');
  });

  it('fail/CONNECT to a host outside egress → 403 MESHAUTH_ERR_EGRESS_FORBIDDEN', async () => {
    const reply = await rawExchange(
      pair.a.sidecar.outboundPort,
      `CONNECT localhost:${echoPort} HTTP/1.1\r\nHost: localhost:${echoPort}\r\n\r\n`,
    );
    expect(reply).toMatch(/^HTTP\/1\.1 403/);
    expect(reply).toContain('"code":"MESHAUTH_ERR_EGRESS_FORBIDDEN"');
  });

  it.each([
    ['fail/CONNECT target with a stray bracket', 'a]b:443'],
    ['fail/CONNECT target with an unclosed IPv6 bracket', '[::1:443'],
    ['fail/CONNECT target without a port', '127.0.0.1'],
    ['fail/CONNECT target with port 0', '127.0.0.1:0'],
  ])('%s → 400 MESHAUTH_ERR_BAD_REQUEST', async (_name, target) => {
    const reply = await rawExchange(pair.a.sidecar.outboundPort, `CONNECT ${target} HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(reply).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(reply).toContain('"code":"MESHAUTH_ERR_BAD_REQUEST"');
  });
});

describe('inbound hostile HTTP/1.1', () => {
  let app: TestApp;
  let sidecar: TestSidecar;
  let client: TestSvid;
  let inbound: InboundServer;

  beforeAll(async () => {
    inbound = await startInboundServer({
      namespace: 'a',
      inboundLimits: { headersTimeoutMs: 300, maxHeaderBytes: 8 * 1024 },
    });
    ({ app, sidecar, client } = inbound);
  });
  afterAll(async () => {
    await inbound?.close();
  });

  const send = (bytes: string) =>
    rawTlsExchange(sidecar.sidecar.inboundPort, client, bytes).then((reply) => reply.split('\r\n', 1)[0]);

  const cases: Array<[string, string, RegExp]> = [
    ['ok/plain GET', 'GET /ok HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n', /^HTTP\/1\.1 200/],
    ['fail/lower-case method', 'get / HTTP/1.1\r\nHost: b\r\n\r\n', /^HTTP\/1\.1 400/],
    [
      'fail/Content-Length with Transfer-Encoding',
      'POST / HTTP/1.1\r\nHost: b\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      /^HTTP\/1\.1 400/,
    ],
    [
      'fail/two different Content-Length values',
      'POST / HTTP/1.1\r\nHost: b\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello',
      /^HTTP\/1\.1 400/,
    ],
    [
      'fail/obs-fold header (accepted only by the insecure parser)',
      'GET / HTTP/1.1\r\nHost: b\r\nX-A: 1\r\n 2\r\n\r\n',
      /^HTTP\/1\.1 400/,
    ],
    ['fail/bare LF line ending', 'GET / HTTP/1.1\nHost: b\n\n', /^HTTP\/1\.1 400/],
    ['fail/missing Host', 'GET / HTTP/1.1\r\n\r\n', /^HTTP\/1\.1 400/],
    [
      'fail/header block over the limit',
      `GET / HTTP/1.1\r\nHost: b\r\nX-Big: ${'a'.repeat(10_000)}\r\n\r\n`,
      /^HTTP\/1\.1 431/,
    ],
    ['fail/slowloris (headers never finish)', 'GET / HTTP/1.1\r\nHost: b\r\nX-Slow: 1', /^HTTP\/1\.1 408/],
  ];
  it.each(cases)('%s', async (name, bytes, expected) => {
    const seen = app.seen.length;
    expect(await send(bytes)).toMatch(expected);
    // ok/ requests reach the app exactly once; fail/ requests never do.
    expect(app.seen.length).toBe(name.startsWith('ok/') ? seen + 1 : seen);
  });

  it('fail/rejections are counted', async () => {
    const text = await sidecar.metrics.registry.getSingleMetricAsString('meshauth_requests_rejected_total');
    expect(text).toContain('code="MESHAUTH_ERR_HEADERS_TOO_LARGE"');
    expect(text).toContain('code="MESHAUTH_ERR_BAD_REQUEST"');
  });
});

/** Writes raw bytes to a plain TCP port; resolves with everything read until close (or `until` holds). */
function rawExchange(port: number, bytes: string, until?: (text: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = new Socket();
    socket.connect(port, '127.0.0.1', () => socket.write(bytes));
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (until?.(text)) socket.destroy();
    });
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
    socket.setTimeout(5_000, () => socket.destroy());
  });
}

/** Writes raw bytes over mTLS (HTTP/1.1 by ALPN) and resolves with the reply read until close. */
function rawTlsExchange(port: number, svid: TestSvid, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = tlsConnect(
      {
        host: '127.0.0.1',
        port,
        cert: svid.chainPem,
        key: svid.keyPem,
        checkServerIdentity: () => undefined,
        ca: [],
        ALPNProtocols: ['http/1.1'],
        rejectUnauthorized: false,
      },
      () => socket.write(bytes),
    );
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
    });
    socket.on('close', () => resolve(text));
    socket.on('error', (e) => (text === '' ? reject(e) : resolve(text)));
    socket.setTimeout(5_000, () => socket.destroy());
  });
}
