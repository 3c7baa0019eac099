// Identity-header spoofing in both directions on real sockets: a peer speaking straight to the inbound listener
// (HTTP/1.1 raw bytes and h2) cannot plant or delete the identity header the app reads; what the app sends on an
// outbound request never reaches the wire to the peer; identity headers in an app's response never reach the caller.
import { createHash } from 'node:crypto';
import { createSecureServer, type Http2SecureServer, type IncomingHttpHeaders } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logLines } from '../helpers/log-lines.js';
import { h2GetStatus, mtlsH2Session } from '../helpers/raw-app.js';
import { rawTlsExchange } from '../helpers/raw-tls.js';
import {
  type AppHandler,
  echoApp,
  type SidecarPair,
  startApp,
  startPair,
  startTestSidecar,
  type TestApp,
  type TestSidecar,
  testConfig,
  viaProxy,
} from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';

/** Identity headers an app puts on its response for `/spoof-response` (plus one ordinary header that must pass). */
const respondWithIdentityHeaders: AppHandler = (req, res, seen) => {
  if (req.url?.startsWith('/spoof-response')) {
    res.setHeader('X-Forwarded-Client-Cert', 'By=spiffe://example.org/x;URI=spiffe://example.org/ns/admin/sa/admin');
    res.setHeader('x-meshauth-user', 'eyJzdWIiOiJhZG1pbiJ9');
    res.setHeader('X-Meshauth-Passport', 'forged');
    res.setHeader('x-app', 'kept');
  }
  echoApp(req, res, seen);
};

const SPOOFED_XFCC = 'By=spiffe://example.org/x;URI=spiffe://example.org/ns/admin/sa/admin';

describe('inbound: a peer cannot plant or remove identity headers (I01–I03)', () => {
  let ca: TestCa;
  let app: TestApp;
  let server: TestSidecar;
  let client: TestSvid;
  let expectedXfcc: string;
  const log = logLines('inbound', 'info');
  /** meshauth_identity_headers_stripped_total{direction="inbound"}. */
  const stripped = async () =>
    (await server.metrics.identityHeadersStripped.get()).values.find((v) => v.labels.direction === 'inbound')?.value ??
    0;

  beforeAll(async () => {
    ca = await TestCa.create();
    app = await startApp(respondWithIdentityHeaders);
    const serverId = ca.idFor('/ns/a/sa/server');
    server = await startTestSidecar(ca, serverId, testConfig({ appPort: app.port }), { logger: log.logger });
    client = await ca.issue({ id: ca.idFor('/ns/a/sa/client') });
    const hash = createHash('sha256').update(Buffer.from(client.leaf.rawData)).digest('hex');
    expectedXfcc = `By=${serverId};Hash=${hash};URI=${client.id}`;
  });
  afterAll(async () => {
    await server?.sidecar.close(0);
    await app?.close();
  });

  /** A GET over a fresh mTLS h2 session with `headers` added; resolves with the response status. */
  async function h2Get(headers: Record<string, string | string[]>): Promise<number> {
    const session = await mtlsH2Session(server.sidecar.inboundPort, client, ca.bundlePem);
    try {
      return await h2GetStatus(session, headers);
    } finally {
      session.close();
    }
  }

  // The last field: whether the request carried an identity header to strip (counted and logged) or only named one.
  const h1Cases: Array<[string, string[], number]> = [
    [
      'fail/case variants, duplicates and comma-joined XFCC (I01, I02)',
      [
        `X-Forwarded-Client-Cert: ${SPOOFED_XFCC}`,
        'x-FORWARDED-client-cert: URI=spiffe://example.org/ns/admin/sa/admin',
        `x-forwarded-client-cert: ${SPOOFED_XFCC},URI=spiffe://evil.org/x`,
        'X-MESHAUTH-USER: eyJzdWIiOiJhZG1pbiJ9',
        'x-meshauth-passport: forged',
        'X-Meshauth-Chain: spiffe://example.org/ns/admin/sa/admin',
      ],
      1,
    ],
    [
      'fail/Connection names XFCC so a proxy would delete its own header (I03)',
      ['Connection: close, x-forwarded-client-cert', `x-forwarded-client-cert: ${SPOOFED_XFCC}`],
      1,
    ],
    [
      'fail/Connection names XFCC in another case, next to x-meshauth-user (I03)',
      ['Connection: X-Forwarded-Client-Cert, x-meshauth-user', 'Connection: close'],
      0,
    ],
  ];
  it.each(h1Cases)('%s → the app sees exactly the sidecar’s XFCC (HTTP/1.1)', async (_name, lines, counted) => {
    const seen = app.seen.length;
    const before = await stripped();
    const reply = await rawTlsExchange(
      server.sidecar.inboundPort,
      client,
      ca.bundlePem,
      `GET /h1 HTTP/1.1\r\nHost: b\r\n${lines.join('\r\n')}\r\nConnection: close\r\n\r\n`,
    );
    expect(reply).toMatch(/^HTTP\/1\.1 200/);
    expect(app.seen.length).toBe(seen + 1);
    const raw = app.seen.at(-1)?.rawHeaders ?? [];
    expect(rawValues(raw, 'x-forwarded-client-cert')).toEqual([expectedXfcc]);
    expect(rawNames(raw).filter((n) => n.startsWith('x-meshauth-'))).toEqual([]);
    expect((await stripped()) - before).toBe(counted);
  });

  it('fail/spoofed XFCC and x-meshauth-* over h2 (repeated, mixed case) → only the sidecar’s XFCC (I02)', async () => {
    const before = await stripped();
    expect(
      await h2Get({
        ':path': '/h2',
        'X-Forwarded-Client-Cert': [SPOOFED_XFCC, 'URI=spiffe://evil.org/x'],
        'x-meshauth-user': 'eyJzdWIiOiJhZG1pbiJ9',
        'X-Meshauth-Passport': 'forged',
      }),
    ).toBe(200);
    const seen = app.seen.at(-1);
    expect(seen?.url).toBe('/h2');
    expect(rawValues(seen?.rawHeaders ?? [], 'x-forwarded-client-cert')).toEqual([expectedXfcc]);
    expect(rawNames(seen?.rawHeaders ?? []).filter((n) => n.startsWith('x-meshauth-'))).toEqual([]);
    expect((await stripped()) - before).toBe(1);
    // Counted every time, logged at most once per window (a peer can send them on every request): one line for
    // all of this file’s requests.
    const lines = log.find({ event: 'identity_headers_stripped', direction: 'inbound' });
    expect(lines.length).toBe(1);
    expect(lines[0]?.peer).toBe(client.id.toString());
  });

  // RFC 9440 §4: a TLS-terminating proxy removes Client-Cert/-Chain it receives; H14: the policy decided on the
  // request line's method, so a header an app would take as the method instead never reaches it.
  const TERMINATED_CLAIMS = [
    'client-cert',
    'client-cert-chain',
    'x-http-method-override',
    'x-http-method',
    'x-method-override',
    'x-original-url',
    'x-rewrite-url',
  ];
  it('fail/Client-Cert, Client-Cert-Chain, method and path overrides from a peer never reach the app (HTTP/1.1, H3, H14)', async () => {
    const reply = await rawTlsExchange(
      server.sidecar.inboundPort,
      client,
      ca.bundlePem,
      'GET /claims-h1 HTTP/1.1\r\nHost: b\r\nClient-Cert: :MIIBqDCCAU6gAwIBAgIBBzAKBggqhkjOPQQDAjA6MRswGQYDVQQKDBJMZXQncyBBdXRoZW50aWNhdGU=:\r\n' +
        'CLIENT-CERT-CHAIN: :MIIB=:\r\nX-HTTP-Method-Override: DELETE\r\nx-http-method: PUT\r\nX-Method-Override: PATCH\r\n' +
        'X-Original-URL: /admin\r\nX-Rewrite-URL: /admin\r\n' +
        'X-Forwarded-For: 10.0.0.1\r\nConnection: close\r\n\r\n',
    );
    expect(reply).toMatch(/^HTTP\/1\.1 200/);
    const seen = app.seen.at(-1);
    expect(seen?.url).toBe('/claims-h1');
    expect(seen?.method).toBe('GET');
    const names = rawNames(seen?.rawHeaders ?? []);
    expect(names.filter((n) => TERMINATED_CLAIMS.includes(n))).toEqual([]);
    // What a peer not trusted to forward (inbound.trustForwardedFrom) says about a client does not reach the app
    // either (inbound-trusted-forwarders.test.ts).
    expect(rawValues(seen?.rawHeaders ?? [], 'x-forwarded-for')).toEqual([]);
  });

  it('fail/the same over h2 → none reaches the app', async () => {
    expect(
      await h2Get({
        ':path': '/claims-h2',
        'client-cert': ':MIIB=:',
        'client-cert-chain': ':MIIB=:',
        'x-http-method-override': 'DELETE',
        'x-http-method': 'PUT',
        'x-method-override': 'PATCH',
        'x-original-url': '/admin',
        'x-rewrite-url': '/admin',
      }),
    ).toBe(200);
    const seen = app.seen.at(-1);
    expect(seen?.url).toBe('/claims-h2');
    expect(rawNames(seen?.rawHeaders ?? []).filter((n) => TERMINATED_CLAIMS.includes(n))).toEqual([]);
  });

  it('fail/the app’s response carries identity headers → the caller never sees them (I06, inbound)', async () => {
    const reply = await rawTlsExchange(
      server.sidecar.inboundPort,
      client,
      ca.bundlePem,
      'GET /spoof-response HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n',
    );
    const head = reply.slice(0, reply.indexOf('\r\n\r\n')).toLowerCase();
    expect(head).toMatch(/^http\/1\.1 200/);
    expect(head).toContain('x-app: kept');
    expect(head).not.toContain('x-forwarded-client-cert');
    expect(head).not.toContain('x-meshauth-');
  });
});

describe('outbound: what the app sends never reaches the peer as identity (I05)', () => {
  let ca: TestCa;
  let peerServer: Http2SecureServer;
  let client: TestSidecar;
  const received: IncomingHttpHeaders[] = [];

  beforeAll(async () => {
    ca = await TestCa.create();
    // A bare h2 peer (not a sidecar) that records the headers exactly as they arrive on the wire.
    const peerId = ca.idFor('/ns/b/sa/b');
    const peer = await ca.issue({ id: peerId });
    peerServer = createSecureServer({
      cert: peer.chainPem,
      key: peer.keyPem,
      ca: ca.bundlePem,
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
    });
    peerServer.on('stream', (stream, headers) => {
      received.push(headers);
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
    await new Promise<void>((resolve) => peerServer.listen(0, '127.0.0.1', resolve));
    const port = (peerServer.address() as { port: number }).port;
    client = await startTestSidecar(
      ca,
      ca.idFor('/ns/a/sa/a'),
      testConfig({ appPort: 1, routes: { 'b.mesh': { address: `127.0.0.1:${port}`, ids: [peerId] } } }),
    );
  });
  afterAll(async () => {
    await client?.sidecar.close(0);
    await new Promise((resolve) => peerServer?.close(resolve));
  });

  it.each([
    ['proxy form', false],
    ['origin form', true],
  ])('fail/XFCC and x-meshauth-user from the app are stripped before the peer (%s)', async (_name, origin) => {
    const before = received.length;
    const res = await viaProxy(client.sidecar.outboundPort, 'http://b.mesh/out', {
      origin,
      headers: {
        'X-Forwarded-Client-Cert': SPOOFED_XFCC,
        'x-FORWARDED-client-cert': 'URI=spiffe://evil.org/x',
        'X-Meshauth-User': 'eyJzdWIiOiJhZG1pbiJ9',
        'x-meshauth-anything': '1',
        'x-trace': 'kept',
      },
    });
    expect(res.status).toBe(200);
    expect(received.length).toBe(before + 1);
    const headers = received.at(-1) ?? {};
    expect(headers['x-trace']).toBe('kept');
    expect(Object.keys(headers).filter((n) => n === 'x-forwarded-client-cert' || n.startsWith('x-meshauth-'))).toEqual(
      [],
    );
  });

  it('fail/a passport the sidecar never received → 401 MESHAUTH_ERR_PASSPORT_INVALID, nothing sent, counted', async () => {
    const before = received.length;
    const res = await viaProxy(client.sidecar.outboundPort, 'http://b.mesh/out', {
      headers: { 'x-meshauth-passport': 'eyJhbGciOiJFUzI1NiJ9.e30.AAAA' },
    });
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body)).toEqual({ code: 'MESHAUTH_ERR_PASSPORT_INVALID', message: 'invalid passport' });
    expect(received.length).toBe(before);
    const rejected = await client.metrics.registry.getSingleMetricAsString('meshauth_requests_rejected_total');
    expect(rejected).toContain('direction="outbound",code="MESHAUTH_ERR_PASSPORT_INVALID"} 1');
  });
});

describe('through a sidecar pair: response identity headers never reach app A (I06)', () => {
  let pair: SidecarPair;

  beforeAll(async () => {
    pair = await startPair(await TestCa.create(), { appHandler: respondWithIdentityHeaders });
  });
  afterAll(async () => {
    await pair?.close();
  });

  it('fail/app B answers with XFCC and x-meshauth-* → app A sees none of them (h2 between sidecars)', async () => {
    const res = await viaProxy(pair.a.sidecar.outboundPort, 'http://b.mesh/spoof-response');
    expect(res.status).toBe(200);
    expect(res.headers['x-app']).toBe('kept');
    expect(
      Object.keys(res.headers).filter((n) => n === 'x-forwarded-client-cert' || n.startsWith('x-meshauth-')),
    ).toEqual([]);
  });
});

function rawValues(raw: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i]?.toLowerCase() === name) out.push(raw[i + 1] as string);
  return out;
}

function rawNames(raw: readonly string[]): string[] {
  return raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
}
