// What a browser or API client can make the service see through the gateway. Found by an outside audit (2026-12-02);
// each case failed before its fix. docs/gateway.md "What reaches the service": `Forwarded`/`X-Forwarded-*` from the
// client are stripped and X-Forwarded-Host is the public host; the edge runs the inbound sidecar's head checks
// (request-checks.ts: isHostPort, one Host, :authority agreeing with host, Transfer-Encoding chunked only).
import { constants, connect as h2Connect } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BadMesh, h1Exchange, startBadMesh } from '../helpers/gateway-bad-service.js';

describe('gateway: headers and paths that reach the service', () => {
  let m: BadMesh;
  beforeAll(async () => {
    m = await startBadMesh();
  });
  afterAll(async () => {
    await m?.close();
  });

  /** One HTTP/1.1 request over TLS; the status line and the echo app's view (when the service answered). */
  async function send(head: string, body = ''): Promise<{ status: string; seen: Record<string, unknown> | undefined }> {
    const r = await h1Exchange(m.port, m.mesh.files.caPem, `${head}Connection: close\r\n\r\n${body}`, 2_000);
    const status = r.text.split('\r\n')[0] ?? '';
    const text = r.text.slice(r.text.indexOf('\r\n\r\n') + 4);
    let seen: Record<string, unknown> | undefined;
    try {
      const parsed = JSON.parse(text) as Record<string, unknown>;
      seen = 'headers' in parsed ? parsed : undefined;
    } catch {
      seen = undefined;
    }
    return { status, seen };
  }

  it('fail/client-sent X-Forwarded-* headers other than -For/-Host/-Proto reach the service', async () => {
    const spoofed = {
      'x-forwarded-user': 'admin',
      'x-forwarded-email': 'admin@example.org',
      'x-forwarded-groups': 'admins',
      'x-forwarded-preferred-username': 'admin',
      'x-forwarded-port': '80',
      'x-forwarded-prefix': '/evil',
      'x-forwarded-uri': '/admin',
      'x-forwarded-server': 'evil.example',
    };
    const lines = Object.entries(spoofed)
      .map(([n, v]) => `${n}: ${v}\r\n`)
      .join('');
    const { status, seen } = await send(`GET /bad/echo HTTP/1.1\r\nHost: 127.0.0.1:${m.port}\r\n${lines}`);
    expect(status).toBe('HTTP/1.1 200 OK');
    const headers = seen?.headers as Record<string, string>;
    const leaked = Object.keys(spoofed).filter((n) => headers[n] !== undefined);
    // Apps behind auth proxies trust X-Forwarded-User/Email; Spring/ASP.NET build links from -Prefix/-Port.
    expect(leaked).toEqual([]);
  });

  it.each([
    ['127.0.0.1:443@evil.example'],
    ['127.0.0.1:443,evil.example'],
    ['127.0.0.1:1/evil'],
    ['127.0.0.1:x"><script>'],
  ])('fail/Host %s → 400, never routed as 127.0.0.1 nor forwarded as X-Forwarded-Host', async (host) => {
    const { status, seen } = await send(`GET /bad/echo HTTP/1.1\r\nHost: ${host}\r\n`);
    // Not host[:port]: a service that builds links from X-Forwarded-Host (password reset, OAuth redirect) would point
    // them at evil.example.
    const forwarded = (seen?.headers as Record<string, string> | undefined)?.['x-forwarded-host'];
    expect({ status, forwarded }).toEqual({ status: 'HTTP/1.1 400 Bad Request', forwarded: undefined });
  });

  it.each([
    ['127.0.0.1:443@evil.example', undefined],
    ['127.0.0.1', 'evil.example'],
  ])(
    'fail/HTTP/2 :authority %s (host %s) → refused (400, or a PROTOCOL_ERROR reset), never forwarded',
    async (authority, host) => {
      const before = m.badApp.seen.length;
      const session = h2Connect(m.mesh.origin, { ca: [m.mesh.files.caPem] });
      session.on('error', () => undefined);
      try {
        const outcome = await new Promise<string>((resolve) => {
          const stream = session.request({
            ':method': 'GET',
            ':path': '/bad/echo',
            ':authority': authority,
            ...(host === undefined ? {} : { host }),
          });
          stream.on('response', (headers) => resolve(String(headers[':status'])));
          stream.on('error', () => undefined);
          stream.on('close', () => resolve(`rst:${stream.rstCode}`));
          stream.resume();
        });
        // Node 24's nghttp2 refuses userinfo in :authority itself (RFC 9113 §8.3.1); Node 20's lets the edge answer.
        expect(['400', `rst:${constants.NGHTTP2_PROTOCOL_ERROR}`]).toContain(outcome);
        expect(m.badApp.seen.length).toBe(before);
      } finally {
        session.close();
      }
    },
  );

  it.each([
    ['//.meshauth/callback?code=c&state=s'],
    ['/%2Emeshauth/logout'],
    ['/x/../.meshauth/logout'],
    ['/.%6Deshauth/anything'],
  ])('fail/%s normalizes into the reserved /.meshauth/ namespace → 404, never forwarded', async (path) => {
    const before = m.mesh.webApp.seen.length;
    const { status } = await send(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${m.port}\r\n`);
    // The reserved check runs on the normalized path too, not only the raw one.
    expect(status).toBe('HTTP/1.1 404 Not Found');
    expect(m.mesh.webApp.seen.slice(before).map((s) => s.url)).toEqual([]);
  });

  it('fail/a Transfer-Encoding other than chunked → 400, the body never reaches the service undeclared', async () => {
    const { status, seen } = await send(
      `POST /bad/echo HTTP/1.1\r\nHost: 127.0.0.1:${m.port}\r\nTransfer-Encoding: gzip, chunked\r\n`,
      '5\r\nabcde\r\n0\r\n\r\n',
    );
    // The app would get the bytes de-chunked, without the coding (gzip bytes taken as plain).
    expect({ status, reached: seen !== undefined }).toEqual({ status: 'HTTP/1.1 400 Bad Request', reached: false });
  });

  it('fail/two Host headers → 400', async () => {
    const { status } = await send(`GET /bad/echo HTTP/1.1\r\nHost: 127.0.0.1:${m.port}\r\nHost: admin.internal\r\n`);
    // RFC 9112 §3.2: a request with more than one Host is answered 400; the inbound sidecar does (host_repeated).
    expect(status).toBe('HTTP/1.1 400 Bad Request');
  });

  it('fail/a service cannot send a nameless cookie that a browser would send back as the gateway session', async () => {
    const line = encodeURIComponent('=__Host-meshauth=planted-by-service; Path=/; Secure; HttpOnly');
    const r = await h1Exchange(
      m.port,
      m.mesh.files.caPem,
      `GET /bad/cookie?c=${line} HTTP/1.1\r\nHost: 127.0.0.1:${m.port}\r\nConnection: close\r\n\r\n`,
      2_000,
    );
    const setCookies = r.text
      .split('\r\n')
      .filter((l) => l.toLowerCase().startsWith('set-cookie:'))
      .map((l) => l.slice(11).trim());
    // A nameless cookie is sent back by a browser as its bare value: `Cookie: __Host-meshauth=planted-by-service`.
    // Current browsers refuse a nameless cookie whose value starts with __Host- (RFC 6265bis), older ones and other
    // user agents may not; the gateway's Set-Cookie filter (mesh-forwarder.ts) drops every nameless cookie.
    expect(setCookies.filter((c) => c.includes('__Host-meshauth'))).toEqual([]);
  });
});
