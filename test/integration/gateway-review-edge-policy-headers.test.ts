// What the edge policy decides on and what a route's service then receives, for a service that is not a sidecar (an
// HTTP/1.1 mTLS server that echoes its request). Found by a review (2026-12-05); each case failed before its fix:
// the method-override headers reached the service although the policy decided on the request line's method, and a
// header the request's Connection names met a `when.headers` condition although the gateway never forwards it. And
// (found by a probe of checks that read another view of the headers than the one forwarded, 2026-12-07) the policy
// read the client's own forwarding headers: a forged X-Forwarded-For met an allow rule on that address while the
// service got the real one, and a deny rule on the X-Forwarded-Host the gateway sets never fired.
import { createServer as createHttpsServer, type Server } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { h1Exchange } from '../helpers/gateway-bad-service.js';
import { type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';

const PEER_ID = 'spiffe://example.org/ns/legacy/sa/h1';
const POLICY = `apiVersion: meshauth.dev/v1
kind: Policy
rules:
  - name: legacy-no-delete
    action: allow
    to: { methods: [GET, POST], paths: ["/legacy/*"] }
  - name: admin-needs-header
    action: allow
    to: { paths: ["/admin-area/*"] }
    when: { headers: { x-role: [admin] } }
  - name: web-all
    action: allow
    to: { paths: ["/shop/*", "/shop"] }
  - name: office-only
    action: allow
    to: { paths: ["/internal/*"] }
    when: { headers: { x-forwarded-for: ["10.1.2.3"] } }
  - name: over-https
    action: allow
    to: { paths: ["/open/*"] }
    when: { headers: { x-forwarded-proto: ["https"] } }
  - name: not-this-public-host
    action: deny
    to: { paths: ["/blocked/*"] }
    when: { headers: { x-forwarded-host: ["PUBLIC_HOST"] } }
  - name: blocked-otherwise
    action: allow
    to: { paths: ["/blocked/*"] }
`;

describe('gateway: the edge policy and a service that is not a sidecar', () => {
  let mesh: GatewayMesh;
  let peer: Server;
  let port: number;

  beforeAll(async () => {
    peer = createHttpsServer(
      { requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['http/1.1'] },
      (req, res) => {
        const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      },
    );
    await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
    const peerPort = (peer.address() as { port: number }).port;
    const to = { address: `127.0.0.1:${peerPort}`, ids: [PEER_ID] };
    mesh = await startGatewayMesh({
      gateway: (base, files) => ({
        ...base,
        // The public host:port, what the gateway sets as X-Forwarded-Host.
        policy: files.write('edge-policy.yaml', POLICY.replace('PUBLIC_HOST', String(base.listen))),
        routes: [
          { name: 'legacy', match: { host: '127.0.0.1', pathPrefix: '/legacy' }, to, login: 'none' },
          { name: 'admin-area', match: { host: '127.0.0.1', pathPrefix: '/admin-area' }, to, login: 'none' },
          ...['internal', 'open', 'blocked'].map((name) => ({
            name,
            match: { host: '127.0.0.1', pathPrefix: `/${name}` },
            to,
            login: 'none',
          })),
          ...(base.routes as unknown[]),
        ],
      }),
    });
    const svid = await mesh.ca.issue({ id: PEER_ID });
    peer.setSecureContext({ cert: svid.chainPem, key: svid.keyPem, ca: [mesh.ca.rootPem] });
    port = Number(new URL(mesh.origin).port);
  });
  afterAll(async () => {
    await mesh?.close();
    peer?.closeAllConnections();
    await new Promise((done) => peer?.close(done));
  });

  async function send(
    head: string,
  ): Promise<{ status: string; seen: { headers: Record<string, string> } | undefined }> {
    const r = await h1Exchange(port, mesh.files.caPem, `${head}Host: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`);
    const status = r.text.split('\r\n')[0] ?? '';
    const body = r.text.slice(r.text.indexOf('\r\n\r\n') + 4);
    return { status, seen: status.includes(' 200 ') ? JSON.parse(body) : undefined };
  }

  it('fail/a method the policy refuses cannot ride on an allowed one as a method-override header (nor a path, nor a client address)', async () => {
    expect((await send('DELETE /legacy/orders/42 HTTP/1.1\r\n')).status).toBe('HTTP/1.1 403 Forbidden');
    const { status, seen } = await send(
      'POST /legacy/orders/42 HTTP/1.1\r\nContent-Length: 0\r\nX-HTTP-Method-Override: DELETE\r\nX-HTTP-Method: DELETE\r\nX-Method-Override: DELETE\r\n' +
        'X-Original-URL: /admin\r\nX-Rewrite-URL: /admin\r\nTrue-Client-IP: 10.0.0.1\r\nCF-Connecting-IP: 10.0.0.1\r\n',
    );
    expect(status).toBe('HTTP/1.1 200 OK');
    const names = Object.keys(seen?.headers ?? {});
    expect(names).not.toContain('x-http-method-override');
    expect(names).not.toContain('x-http-method');
    expect(names).not.toContain('x-method-override');
    expect(names).not.toContain('x-original-url'); // a path override, for the same reason
    expect(names).not.toContain('x-rewrite-url');
    expect(names).not.toContain('true-client-ip'); // client addresses the browser claims (isForwardingHeader)
    expect(names).not.toContain('cf-connecting-ip');
  });

  // Found by a probe of apps that decode before routing (2026-12-07): express's method-override('_method') routes a
  // POST with `?_method=DELETE` as DELETE, and the query reaches the service as sent.
  it('fail/a method the policy refuses cannot ride on an allowed POST as a `_method` query parameter', async () => {
    expect((await send('POST /legacy/orders/42?_method=DELETE HTTP/1.1\r\nContent-Length: 0\r\n')).status).toBe(
      'HTTP/1.1 403 Forbidden',
    );
    expect((await send('POST /legacy/orders/42?%5Fmethod=delete HTTP/1.1\r\nContent-Length: 0\r\n')).status).toBe(
      'HTTP/1.1 403 Forbidden',
    );
    const allowed = await send('POST /legacy/orders/42?_method=GET HTTP/1.1\r\nContent-Length: 0\r\n');
    expect(allowed.status).toBe('HTTP/1.1 200 OK');
  });

  it('fail/a header the request’s Connection names does not meet a policy condition', async () => {
    const allowed = await send('GET /admin-area/x HTTP/1.1\r\nX-Role: admin\r\n');
    expect(allowed.status).toBe('HTTP/1.1 200 OK');
    expect(allowed.seen?.headers['x-role']).toBe('admin');
    expect((await send('GET /admin-area/x HTTP/1.1\r\nX-Role: admin\r\nConnection: x-role\r\n')).status).toBe(
      'HTTP/1.1 403 Forbidden',
    );
    expect((await send('GET /admin-area/x HTTP/1.1\r\nX_Role: admin\r\n')).status).toBe('HTTP/1.1 403 Forbidden');
  });

  it('ok/a condition on the X-Forwarded-Proto the gateway sets is met without the client sending it', async () => {
    const { status, seen } = await send('GET /open/x HTTP/1.1\r\nX-Forwarded-Proto: http\r\n');
    expect(status).toBe('HTTP/1.1 200 OK');
    expect(seen?.headers['x-forwarded-proto']).toBe('https');
  });

  it('fail/a forged X-Forwarded-For does not meet an allow rule on that address', async () => {
    expect((await send('GET /internal/x HTTP/1.1\r\n')).status).toBe('HTTP/1.1 403 Forbidden');
    expect((await send('GET /internal/x HTTP/1.1\r\nX-Forwarded-For: 10.1.2.3\r\n')).status).toBe(
      'HTTP/1.1 403 Forbidden',
    );
  });

  it('fail/a deny rule on the X-Forwarded-Host the gateway sets fires without the client sending it', async () => {
    expect((await send('GET /blocked/x HTTP/1.1\r\n')).status).toBe('HTTP/1.1 403 Forbidden');
  });

  it('ok/identity headers a client sends are counted as removed when the request goes on, not when it is denied', async () => {
    const stripped = async () =>
      (await mesh.metrics.identityHeadersStripped.get()).values.find((v) => v.labels.direction === 'edge')?.value ?? 0;
    const before = await stripped();
    expect((await send('GET /internal/x HTTP/1.1\r\nX-Meshauth-User: eyJ9\r\n')).status).toBe('HTTP/1.1 403 Forbidden');
    expect(await stripped()).toBe(before);
    const passed = await send('GET /open/x HTTP/1.1\r\nX-Meshauth-User: eyJ9\r\n');
    expect(passed.status).toBe('HTTP/1.1 200 OK');
    expect(passed.seen?.headers['x-meshauth-user']).toBeUndefined();
    expect(await stripped()).toBe(before + 1);
  });
});
