// A policy's `when.headers` judges the headers exactly as the app gets them. It read them as received: on the
// external listener a forged `X-Forwarded-For: 10.1.2.3` met an allow rule on that address, while the app got the
// listener's own (the caller's real address); over HTTP/2 a rule on `host` never saw the Host the app gets from
// `:authority`, so a deny rule that held over HTTP/1.1 let the same request through over HTTP/2 (found by a probe of
// checks that read another view of the headers than the one forwarded).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as http2Connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { type OidcIssuer, startOidcIssuer } from '../helpers/oidc-issuer.js';
import { rawTlsExchange } from '../helpers/raw-tls.js';
import { startApp, startTestSidecar, type TestApp, type TestSidecar } from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';

const TD = 'example.org';
const SVC = `spiffe://${TD}/ns/edge/sa/svc`;
const POLICY = [
  'apiVersion: meshauth.dev/v1',
  'kind: Policy',
  'rules:',
  '  - name: no-admin-host',
  '    action: deny',
  '    to: { paths: ["/hosty/*"] }',
  '    when: { headers: { host: ["admin.internal"] } }',
  '  - name: mesh',
  '    action: allow',
  `    from: { trustDomains: ["${TD}"] }`,
  '  - name: office-only',
  '    action: allow',
  '    to: { paths: ["/internal/*"] }',
  '    when: { headers: { x-forwarded-for: ["10.1.2.3"] } }',
  '  - name: from-loopback',
  '    action: allow',
  '    to: { paths: ["/local/*"] }',
  '    when: { headers: { x-forwarded-for: ["127.0.0.1"] } }',
].join('\n');

describe('the policy reads the headers the app gets', () => {
  let ca: TestCa;
  let idp: OidcIssuer;
  let dir: string;
  let app: TestApp;
  let sidecar: TestSidecar;
  let caller: TestSvid;
  let https: Agent;

  beforeAll(async () => {
    ca = await TestCa.create(TD);
    idp = await startOidcIssuer({
      audience: 'api',
      scopes: ['orders:read'],
      clients: [{ clientId: 'reporting', clientSecret: 'reporting-secret' }],
    });
    dir = mkdtempSync(join(tmpdir(), 'meshauth-policy-view-'));
    const server = await ca.issue({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    writeFileSync(join(dir, 'ext.crt'), server.chainPem);
    writeFileSync(join(dir, 'ext.key'), server.keyPem, { mode: 0o600 });
    writeFileSync(join(dir, 'policy.yaml'), POLICY);
    app = await startApp();
    const config = sidecarConfigFromObject(
      {
        trustDomain: TD,
        ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent', token: '/nonexistent' },
        inbound: {
          listen: '127.0.0.1:0',
          app: `127.0.0.1:${app.port}`,
          policy: join(dir, 'policy.yaml'),
          endUser: {
            issuers: [{ issuer: idp.issuer, audiences: [idp.audience], algorithms: ['ES256'] }],
            vouchers: [SVC],
            claims: ['scope', 'client_id'],
          },
          external: { listen: '127.0.0.1:0', cert: join(dir, 'ext.crt'), key: join(dir, 'ext.key') },
        },
        outbound: { listen: '127.0.0.1:0' },
        admin: { listen: '127.0.0.1:0' },
      },
      'policy-header-view',
    );
    sidecar = await startTestSidecar(ca, SVC, config);
    caller = await ca.issue({ id: `spiffe://${TD}/ns/shop/sa/caller` });
    https = new Agent({ connect: { ca: ca.rootPem } });
  });
  afterAll(async () => {
    await https?.close();
    await sidecar?.sidecar.close(0);
    await app?.close();
    await idp?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function external(path: string, headers: Record<string, string> = {}) {
    const token = await idp.getToken({ clientId: 'reporting', scope: 'orders:read' });
    const url = `https://127.0.0.1:${sidecar.sidecar.externalPort}${path}`;
    const reply = await request(url, { dispatcher: https, headers: { authorization: `Bearer ${token}`, ...headers } });
    const body = await reply.body.text();
    return { status: reply.statusCode, appSaw: reply.statusCode === 200 ? JSON.parse(body).headers : undefined };
  }

  it('fail/external listener: a forged X-Forwarded-For does not meet an allow rule on that address', async () => {
    expect((await external('/internal/x')).status).toBe(403);
    expect((await external('/internal/x', { 'x-forwarded-for': '10.1.2.3' })).status).toBe(403);
  });

  it('ok/external listener: the X-Forwarded-For the listener sets is what a rule reads, whatever the caller sent', async () => {
    const reply = await external('/local/x', { 'x-forwarded-for': '10.1.2.3' });
    expect(reply).toMatchObject({ status: 200, appSaw: { 'x-forwarded-for': '127.0.0.1' } });
  });

  it('fail/a deny rule on host holds over HTTP/2 (:authority) as over HTTP/1.1', async () => {
    const h1 = await rawTlsExchange(
      sidecar.sidecar.inboundPort,
      caller,
      ca.rootPem,
      'GET /hosty/x HTTP/1.1\r\nHost: admin.internal\r\nConnection: close\r\n\r\n',
    );
    expect(h1.startsWith('HTTP/1.1 403')).toBe(true);
    const session = http2Connect(`https://127.0.0.1:${sidecar.sidecar.inboundPort}`, {
      ca: ca.rootPem,
      cert: caller.chainPem,
      key: caller.keyPem,
      checkServerIdentity: () => undefined,
    });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        session.once('error', reject);
        const stream = session.request({ ':path': '/hosty/x', ':authority': 'admin.internal' }, { endStream: true });
        stream.on('response', (h) => resolve(Number(h[':status'])));
        stream.once('error', reject);
        stream.resume();
      });
      expect(status).toBe(403);
    } finally {
      session.close();
    }
  });
});
