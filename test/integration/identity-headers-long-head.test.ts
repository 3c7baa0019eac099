// Identity headers beside a long or oddly spelt request head, through real sidecars. Node 20's node:http keeps the
// first 1,000 fields of a head in `req.headers` and drops the rest without a word: the sidecar appended XFCC and the
// user headers after the caller's fields, so a caller that padded its head to 1,000 fields took them out of a Node
// app's view (the app saw an authorized request and no caller), and the sidecar's own check that a bearer token beside
// a passport names the passport's user read that same view, so a forged token past field 1,000 reached the app beside
// the verified user. Now the identity headers come first, and a head of more than 990 fields (980 from the app at the
// outbound) is 431 `header_count`. Also: identity headers spelt with `_` for `-`, which Werkzeug, PHP and CGI read as
// the same header, no longer pass the outbound in either direction.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createSecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endUserFromClaims } from '../../src/authn/index.js';
import { mintOriginPassport, ownOrigin, wrapPassport } from '../../src/authn/passport/index.js';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { SpiffeId } from '../../src/identity/index.js';
import { endUserToken, jwksText, type SigningKey, signingKey } from '../helpers/end-user-keys.js';
import { mtlsH2Session } from '../helpers/raw-app.js';
import { rawTlsExchange } from '../helpers/raw-tls.js';
import {
  peerServerTls,
  startApp,
  startPair,
  startRoutedSidecar,
  startTestSidecar,
  type TestApp,
  testConfig,
  viaProxy,
} from '../helpers/sidecar-harness.js';
import { rawTcpExchange } from '../helpers/tcp-client.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';

const TD = 'example.org';
const XFCC = 'x-forwarded-client-cert';
const SPOOF = `By=spiffe://${TD}/x;URI=spiffe://${TD}/ns/admin/sa/admin`;

/** `count` header lines `a0:` … (empty values: the most fields in the fewest bytes). */
const padLines = (count: number): string => Array.from({ length: count }, (_, i) => `a${i}:\r\n`).join('');
const padHeaders = (count: number): Record<string, string> =>
  Object.fromEntries(Array.from({ length: count }, (_, i) => [`a${i}`, '']));
const statusOf = (reply: string): number => Number(reply.split(' ', 2)[1]);
const bodyOf = (reply: string): Record<string, unknown> => JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4));

describe('a peer straight to the inbound, with a padded head', () => {
  let ca: TestCa;
  let app: TestApp;
  let client: TestSvid;
  beforeAll(async () => {
    ca = await TestCa.create(TD);
    app = await startApp();
    client = await ca.issue({ id: ca.idFor('/ns/shop/sa/client') });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('ok/HTTP/1.1, 990 fields: the app gets XFCC as its first field, inside what node:http keeps', async () => {
    const server = await startTestSidecar(ca, ca.idFor('/ns/shop/sa/b'), testConfig({ appPort: app.port }));
    try {
      const seen = app.seen.length;
      // Host + 988 + Connection = 990 fields; the app gets 990 with XFCC (Connection is the sidecar's).
      const head = `GET /x HTTP/1.1\r\nHost: b\r\n${padLines(988)}Connection: close\r\n\r\n`;
      const reply = await rawTlsExchange(server.sidecar.inboundPort, client, ca.bundlePem, head);
      expect(statusOf(reply)).toBe(200);
      const got = app.seen[seen];
      expect(got?.rawHeaders[0]?.toLowerCase()).toBe(XFCC);
      expect(got?.headers[XFCC]).toContain(`URI=${client.id}`);
    } finally {
      await server.sidecar.close(0);
    }
  });

  it('fail/HTTP/1.1 keep-alive, 991 fields after a served request → 431 with Connection: close; the request pipelined behind it is not served', async () => {
    const server = await startTestSidecar(ca, ca.idFor('/ns/shop/sa/b'), testConfig({ appPort: app.port }));
    try {
      const seen = app.seen.length;
      const head =
        'GET /first HTTP/1.1\r\nHost: b\r\n\r\n' +
        `GET /x HTTP/1.1\r\nHost: b\r\n${padLines(990)}\r\nGET /second HTTP/1.1\r\nHost: b\r\n\r\n`;
      const reply = await rawTlsExchange(server.sidecar.inboundPort, client, ca.bundlePem, head);
      expect(reply.match(/HTTP\/1\.1 \d+/g)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 431']);
      expect(reply.toLowerCase()).toContain('\r\nconnection: close\r\n');
      expect(app.seen.slice(seen).map((r) => r.url)).toEqual(['/first']);
    } finally {
      await server.sidecar.close(0);
    }
  });

  it('fail/HTTP/2 with a raised maxHeaderBytes, 991 fields → 431 header_count; 990 → XFCC first', async () => {
    const server = await startTestSidecar(ca, ca.idFor('/ns/shop/sa/b'), testConfig({ appPort: app.port }), {
      inboundLimits: { maxHeaderBytes: 65_536 },
    });
    const session = await mtlsH2Session(server.sidecar.inboundPort, client, ca.bundlePem);
    const request = (fields: number) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const stream = session.request(
          { ':path': '/x', ':authority': 'b', ...padHeaders(fields) },
          { endStream: true },
        );
        let status = 0;
        let body = '';
        stream.on('response', (h) => {
          status = Number(h[':status']);
        });
        stream.on('data', (d: Buffer) => {
          body += d.toString();
        });
        stream.on('end', () => resolve({ status, body }));
        stream.on('error', reject);
      });
    try {
      const seen = app.seen.length;
      const refused = await request(991);
      expect(refused.status).toBe(431);
      expect(JSON.parse(refused.body)).toMatchObject({ code: 'MESHAUTH_ERR_HEADERS_TOO_LARGE' });
      expect(app.seen.length).toBe(seen);
      expect((await request(990)).status).toBe(200);
      expect(app.seen[seen]?.rawHeaders[0]).toBe(XFCC);
      expect(app.seen[seen]?.headers[XFCC]).toContain(`URI=${client.id}`);
    } finally {
      session.close();
      await server.sidecar.close(0);
    }
  });
});

describe('a bearer token beside a passport (forwardOriginalToken), past field 1,000 of the head', () => {
  const ISS = 'https://idp.example.org';
  const GATEWAY = `spiffe://${TD}/ns/edge/sa/gateway`;
  const SVC = `spiffe://${TD}/ns/shop/sa/svc`;
  let ca: TestCa;
  let dir: string;
  let app: TestApp;
  let gateway: TestSvid;
  let attackerKey: SigningKey;
  let svc: Awaited<ReturnType<typeof startTestSidecar>>;

  beforeAll(async () => {
    ca = await TestCa.create(TD);
    dir = mkdtempSync(join(tmpdir(), 'meshauth-long-head-'));
    writeFileSync(join(dir, 'jwks.json'), jwksText(await signingKey('idp-1')));
    attackerKey = await signingKey('idp-1'); // same kid, a key the JWKS does not hold
    app = await startApp();
    const endUser = {
      issuers: [
        { issuer: ISS, jwksUri: `file://${join(dir, 'jwks.json')}`, audiences: ['shop'], algorithms: ['ES256'] },
      ],
      vouchers: [GATEWAY],
      forwardOriginalToken: true,
    };
    const config = sidecarConfigFromObject(
      {
        trustDomain: TD,
        ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent', token: '/nonexistent' },
        inbound: { listen: '127.0.0.1:0', app: `127.0.0.1:${app.port}`, endUser },
        outbound: { listen: '127.0.0.1:0' },
        admin: { listen: '127.0.0.1:0' },
      },
      'identity-headers-long-head',
    );
    svc = await startTestSidecar(ca, SVC, config);
    gateway = await ca.issue({ id: GATEWAY });
  });
  afterAll(async () => {
    await svc?.sidecar.close(0);
    await app?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A passport for alice from the gateway (a voucher) to the service. */
  function passportForAlice(): string {
    const now = new Date();
    const user = endUserFromClaims({ sub: 'alice', iss: ISS, exp: Math.floor(now.getTime() / 1000) + 600 }, []);
    if (user === undefined) throw new Error('no user from the claims');
    const origin = mintOriginPassport({ svid: gateway.svid, now, user });
    const received = ownOrigin(origin, gateway.svid.id, user.expiresAt);
    return wrapPassport({ svid: gateway.svid, audience: SpiffeId.parse(SVC), now, received });
  }

  it.each([
    // Host + padding + passport + Authorization + Connection.
    [
      'fail/990 fields: the forged token is checked against the passport and refused',
      986,
      401,
      'MESHAUTH_ERR_TOKEN_INVALID',
    ],
    ['fail/991 fields: 431 before any check reads the head', 987, 431, 'MESHAUTH_ERR_HEADERS_TOO_LARGE'],
  ])('%s', async (_name, padding, status, code) => {
    const forged = await endUserToken(attackerKey, ISS, 'shop', 'admin');
    const seen = app.seen.length;
    const head =
      `GET /pay/1 HTTP/1.1\r\nHost: svc\r\n${padLines(padding)}x-meshauth-passport: ${passportForAlice()}\r\n` +
      `Authorization: Bearer ${forged}\r\nConnection: close\r\n\r\n`;
    const reply = await rawTlsExchange(svc.sidecar.inboundPort, gateway, ca.bundlePem, head);
    expect(statusOf(reply)).toBe(status);
    expect(bodyOf(reply)).toMatchObject({ code });
    expect(app.seen.length).toBe(seen);
  });
});

describe('the outbound, with a padded head from its app', () => {
  it('ok/980 fields reach B with XFCC first; fail/981 fields → 431 header_count at the outbound, kept-alive or not', async () => {
    const ca = await TestCa.create(TD);
    const pair = await startPair(ca, { http1: true });
    try {
      const seen = pair.appB.seen.length;
      // viaProxy adds Host and Connection: 979 + 2 = 981 fields, 978 + 2 = 980.
      const refused = await viaProxy(pair.a.sidecar.outboundPort, 'http://b.mesh/x', {
        origin: true,
        headers: padHeaders(979),
      });
      expect(refused.status).toBe(431);
      expect(JSON.parse(refused.body)).toMatchObject({ code: 'MESHAUTH_ERR_HEADERS_TOO_LARGE' });
      expect(pair.appB.seen.length).toBe(seen);
      const passed = await viaProxy(pair.a.sidecar.outboundPort, 'http://b.mesh/x', {
        origin: true,
        headers: padHeaders(978),
      });
      expect(passed.status).toBe(200);
      expect(pair.appB.seen[seen]?.rawHeaders[0]).toBe(XFCC);
      // Kept alive, the refusal closes the connection: a request pipelined behind it is not served.
      const pipelined = await rawTcpExchange(
        pair.a.sidecar.outboundPort,
        Buffer.from(`GET /x HTTP/1.1\r\nHost: b.mesh\r\n${padLines(980)}\r\nGET /y HTTP/1.1\r\nHost: b.mesh\r\n\r\n`),
      );
      const reply = pipelined.bytes.toString('latin1');
      expect(pipelined.closedByServer).toBe(true);
      expect(statusOf(reply)).toBe(431);
      expect(reply.match(/HTTP\/1\.1 \d+/g)).toEqual(['HTTP/1.1 431']);
      expect(pair.appB.seen.map((r) => r.url)).toEqual(['/x']);
    } finally {
      await pair.close();
    }
  });
});

describe('identity headers spelt with underscores, at the outbound', () => {
  let ca: TestCa;
  let peer: TestSvid;
  beforeAll(async () => {
    ca = await TestCa.create(TD);
    peer = await ca.issue({ id: ca.idFor('/ns/legacy/sa/b') });
  });

  it('fail/the app sends x_forwarded_client_cert and x_meshauth_user: a non-sidecar peer gets neither', async () => {
    let wire = '';
    const server = createTlsServer({ ...peerServerTls(peer, ca), ALPNProtocols: ['http/1.1'] }, (socket) => {
      socket.on('error', () => undefined);
      socket.on('data', (d: Buffer) => {
        wire += d.toString('latin1');
        if (wire.includes('\r\n\r\n')) socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const a = await startRoutedSidecar(ca, (server.address() as AddressInfo).port, peer.id, { http2: false });
    try {
      const reply = await viaProxy(a.sidecar.outboundPort, 'http://b.mesh/x', {
        headers: { x_forwarded_client_cert: SPOOF, x_meshauth_user: 'eyJzdWIiOiJhZG1pbiJ9', x_app: 'kept' },
      });
      expect(reply.status).toBe(200);
      expect(wire.toLowerCase()).toContain('x_app: kept');
      expect(wire.toLowerCase()).not.toContain('x_forwarded_client_cert');
      expect(wire.toLowerCase()).not.toContain('x_meshauth_user');
    } finally {
      await a.sidecar.close(0);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('fail/the peer answers with x_meshauth_user and x_forwarded_client_cert: the app gets neither', async () => {
    const server = createSecureServer({ ...peerServerTls(peer, ca) });
    server.on('stream', (stream) => {
      stream.respond({
        ':status': 200,
        x_meshauth_user: 'eyJzdWIiOiJhZG1pbiJ9',
        x_forwarded_client_cert: SPOOF,
        x_app: 'kept',
      });
      stream.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const a = await startRoutedSidecar(ca, (server.address() as AddressInfo).port, peer.id);
    try {
      const reply = await viaProxy(a.sidecar.outboundPort, 'http://b.mesh/x');
      expect(reply.status).toBe(200);
      expect(reply.headers.x_app).toBe('kept');
      expect(reply.headers.x_meshauth_user).toBeUndefined();
      expect(reply.headers.x_forwarded_client_cert).toBeUndefined();
    } finally {
      await a.sidecar.close(0);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
