// What a peer says about a client (X-Forwarded-Host, -For, -User, Forwarded, X-Real-IP, …) reaches the app only from
// the peers in `inbound.trustForwardedFrom` (by default `inbound.endUser.vouchers`: the gateway). Found by a probe:
// any workload of the mesh sent `X-Forwarded-Host: admin.internal`, which apps behind a proxy trust (Express `trust
// proxy`, Koa `app.proxy`), and was served the host a `to.hosts` deny rule names, the policy having judged the Host.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { mtlsH2Session } from '../helpers/raw-app.js';
import { rawTlsExchange, rawTlsSocket } from '../helpers/raw-tls.js';
import { startApp, startTestSidecar, type TestApp, type TestSidecar } from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';

const TD = 'example.org';
const FORWARDING = ['x-forwarded-host', 'forwarded', 'x-forwarded-user', 'x-real-ip', 'x-forwarded-for'];
const CLAIMS =
  'X-Forwarded-Host: admin.internal\r\nForwarded: host=admin.internal\r\nX-Forwarded-User: admin\r\n' +
  'X-Real-IP: 10.1.2.3\r\nX-Forwarded-For: 10.1.2.3\r\n';

describe('inbound.trustForwardedFrom', () => {
  let ca: TestCa;
  let app: TestApp;
  let sidecar: TestSidecar;
  let gateway: TestSvid;
  let workload: TestSvid;
  let dir: string;
  beforeAll(async () => {
    ca = await TestCa.create(TD);
    app = await startApp();
    dir = mkdtempSync(join(tmpdir(), 'meshauth-forwarders-'));
    // A deny on the host an app behind a proxy would serve: it can only fire for what reaches the app.
    const policy = join(dir, 'policy.yaml');
    writeFileSync(
      policy,
      [
        'apiVersion: meshauth.dev/v1',
        'kind: Policy',
        'rules:',
        '  - name: no-admin-host',
        '    action: deny',
        '    to: { paths: ["/deny-admin"] }',
        '    when: { headers: { x-forwarded-host: ["admin.internal"] } }',
        '  - name: mesh',
        '    action: allow',
        `    from: { trustDomains: ["${TD}"] }`,
      ].join('\n'),
    );
    gateway = await ca.issue({ id: ca.idFor('/ns/edge/sa/gateway') });
    workload = await ca.issue({ id: ca.idFor('/ns/shop/sa/other') });
    const config = sidecarConfigFromObject(
      {
        trustDomain: TD,
        ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent', token: '/nonexistent' },
        inbound: { listen: '127.0.0.1:0', app: `127.0.0.1:${app.port}`, policy, trustForwardedFrom: [gateway.id] },
        outbound: { listen: '127.0.0.1:0' },
        admin: { listen: '127.0.0.1:0' },
      },
      'inbound-trusted-forwarders',
    );
    sidecar = await startTestSidecar(ca, ca.idFor('/ns/shop/sa/b'), config);
  });
  afterAll(async () => {
    await sidecar?.sidecar.close(0);
    await app?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const forwardingSeen = (): Record<string, string | string[] | undefined> => {
    const headers = app.seen.at(-1)?.headers ?? {};
    return Object.fromEntries(FORWARDING.map((name) => [name, headers[name]]));
  };

  it.each([
    ['fail/another workload → none of them reaches the app', () => workload, false],
    ['ok/a trusted forwarder → every one reaches the app as sent', () => gateway, true],
  ])('%s (HTTP/1.1)', async (_name, caller, kept) => {
    const head = `GET /x HTTP/1.1\r\nHost: b\r\n${CLAIMS}Connection: close\r\n\r\n`;
    const reply = await rawTlsExchange(sidecar.sidecar.inboundPort, caller(), ca.bundlePem, head);
    expect(reply).toMatch(/^HTTP\/1\.1 200/);
    expect(forwardingSeen()).toEqual(
      kept
        ? {
            'x-forwarded-host': 'admin.internal',
            forwarded: 'host=admin.internal',
            'x-forwarded-user': 'admin',
            'x-real-ip': '10.1.2.3',
            'x-forwarded-for': '10.1.2.3',
          }
        : Object.fromEntries(FORWARDING.map((name) => [name, undefined])),
    );
  });

  it('fail/another workload over HTTP/2 → none of them reaches the app', async () => {
    const session = await mtlsH2Session(sidecar.sidecar.inboundPort, workload, ca.bundlePem);
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const stream = session.request({
          ':method': 'GET',
          ':path': '/h2',
          ':authority': 'b',
          'x-forwarded-host': 'admin.internal',
          forwarded: 'host=admin.internal',
          'x-forwarded-user': 'admin',
        });
        stream.on('response', (headers) => resolve(Number(headers[':status'])));
        stream.on('error', reject);
        stream.resume();
        stream.end();
      });
      expect(status).toBe(200);
      expect(app.seen.at(-1)?.url).toBe('/h2');
      expect(forwardingSeen()).toEqual(Object.fromEntries(FORWARDING.map((name) => [name, undefined])));
    } finally {
      session.close();
    }
  });

  it.each([
    [
      'ok/another workload: the header is dropped, so the deny on it cannot fire, and the app never sees it',
      () => workload,
      200,
    ],
    ['fail/a trusted forwarder: the app would get it, so the deny on it fires', () => gateway, 403],
  ])('%s (kept-alive HTTP/1.1, the lean lane)', async (_name, caller, status) => {
    const socket = rawTlsSocket(sidecar.sidecar.inboundPort, caller(), ca.bundlePem);
    try {
      const reply = await new Promise<string>((resolve, reject) => {
        let text = '';
        socket.once('secureConnect', () =>
          socket.write('GET /deny-admin HTTP/1.1\r\nHost: b\r\nX-Forwarded-Host: admin.internal\r\n\r\n'),
        );
        socket.on('data', (d: Buffer) => {
          text += d.toString('latin1');
          const head = text.indexOf('\r\n\r\n');
          const length = /content-length: (\d+)/i.exec(text)?.[1];
          if (head >= 0 && length !== undefined && text.length >= head + 4 + Number(length)) resolve(text);
        });
        socket.on('error', reject);
      });
      expect(Number(reply.split(' ', 2)[1])).toBe(status);
      if (status === 200) {
        expect(app.seen.at(-1)?.url).toBe('/deny-admin');
        expect(app.seen.at(-1)?.headers['x-forwarded-host']).toBeUndefined();
      }
    } finally {
      socket.destroy();
    }
  });
});
