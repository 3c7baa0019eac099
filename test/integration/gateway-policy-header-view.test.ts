// The edge policy's `when.headers` judges the headers exactly as the gateway passes them on. It read the client's
// own: a forged `X-Forwarded-For: 10.1.2.3` met an allow rule on that address while the service got the gateway's
// (the client's real address), and a deny rule on the X-Forwarded-Host the gateway sets never fired (found by a
// probe of checks that read another view of the headers than the one forwarded).
import { createServer as createHttpsServer, type Server } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { h1Exchange } from '../helpers/gateway-bad-service.js';
import { type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';

const PEER_ID = 'spiffe://example.org/ns/legacy/sa/h1';

describe('gateway: the edge policy reads the headers the service gets', () => {
  let mesh: GatewayMesh;
  let peer: Server;
  let port: number;
  beforeAll(async () => {
    // A service that answers with what it received.
    peer = createHttpsServer(
      { requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['http/1.1'] },
      (req, res) => {
        const body = JSON.stringify({ headers: req.headers });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      },
    );
    await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
    const to = { address: `127.0.0.1:${(peer.address() as { port: number }).port}`, ids: [PEER_ID] };
    mesh = await startGatewayMesh({
      gateway: (base, files) => {
        const publicHost = String(base.listen); // what the gateway sets as X-Forwarded-Host
        const policy = [
          'apiVersion: meshauth.dev/v1',
          'kind: Policy',
          'rules:',
          '  - name: office-only',
          '    action: allow',
          '    to: { paths: ["/internal/*"] }',
          '    when: { headers: { x-forwarded-for: ["10.1.2.3"] } }',
          '  - name: not-this-public-host',
          '    action: deny',
          '    to: { paths: ["/blocked/*"] }',
          `    when: { headers: { x-forwarded-host: ["${publicHost}"] } }`,
          '  - name: rest',
          '    action: allow',
          '    to: { paths: ["/blocked/*"] }',
          '  - name: over-https',
          '    action: allow',
          '    to: { paths: ["/open/*"] }',
          '    when: { headers: { x-forwarded-proto: ["https"] } }',
        ].join('\n');
        return {
          ...base,
          policy: files.write('edge-policy.yaml', policy),
          routes: [
            { name: 'internal', match: { host: '127.0.0.1', pathPrefix: '/internal' }, to, login: 'none' },
            { name: 'blocked', match: { host: '127.0.0.1', pathPrefix: '/blocked' }, to, login: 'none' },
            { name: 'open', match: { host: '127.0.0.1', pathPrefix: '/open' }, to, login: 'none' },
            ...(base.routes as unknown[]),
          ],
        };
      },
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

  async function send(requestLine: string, extra = ''): Promise<{ status: number; headers?: Record<string, string> }> {
    const reply = await h1Exchange(
      port,
      mesh.files.caPem,
      `${requestLine}\r\n${extra}Host: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
    );
    const status = Number(reply.text.split(' ', 2)[1]);
    const body = reply.text.slice(reply.text.indexOf('\r\n\r\n') + 4);
    return status === 200 ? { status, headers: JSON.parse(body).headers } : { status };
  }

  it('ok/a condition on the X-Forwarded-Proto the gateway sets is met without the client sending it', async () => {
    const reply = await send('GET /open/x HTTP/1.1', 'X-Forwarded-Proto: http\r\n');
    expect(reply).toMatchObject({ status: 200, headers: { 'x-forwarded-proto': 'https' } });
  });

  it('fail/a forged X-Forwarded-For does not meet an allow rule on that address', async () => {
    expect((await send('GET /internal/x HTTP/1.1')).status).toBe(403);
    expect((await send('GET /internal/x HTTP/1.1', 'X-Forwarded-For: 10.1.2.3\r\n')).status).toBe(403);
  });

  it('fail/a deny rule on the X-Forwarded-Host the gateway sets fires without the client sending it', async () => {
    expect((await send('GET /blocked/x HTTP/1.1')).status).toBe(403);
  });
});
