// An IP address has one spelling at the sidecar. A probe found `to.hosts: [127.0.0.1, "[::1]"]` passed by `127.1`,
// `2130706433`, `0x7f.0.0.1`, `127.0.0.01`, `[0::1]`, `[::0001]`, … (200, the Host reaching the app as sent, where
// `new URL(req.url, 'http://' + host)` reads 127.0.0.1 / [::1]); now they are refused before any rule runs (400,
// reason host_invalid), over HTTP/1.1 and HTTP/2. On the outbound, a `*` route took `Host: [::ffff:0:0]` and dialled
// it (0.0.0.0) through `{host}`; now a `*` matches a DNS label only and such hosts get the "no route" answer.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { h2Answer, mtlsH2Session } from '../helpers/raw-app.js';
import { rawTlsExchange } from '../helpers/raw-tls.js';
import { startApp, startTestSidecar, type TestApp, type TestSidecar } from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';

const TD = 'example.org';
const POLICY = [
  'apiVersion: meshauth.dev/v1',
  'kind: Policy',
  'rules:',
  '  - name: no-loopback-host',
  '    action: deny',
  '    to: { hosts: ["127.0.0.1", "[::1]"] }',
  '  - name: mesh',
  '    action: allow',
  `    from: { trustDomains: ["${TD}"] }`,
].join('\n');

/** Raw bytes over plain TCP to 127.0.0.1:`port` (the outbound listener); the reply read until close. */
function rawExchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = netConnect({ host: '127.0.0.1', port }, () => socket.write(bytes));
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
    });
    socket.on('close', () => resolve(text));
    socket.on('error', (e) => (text === '' ? reject(e) : resolve(text)));
    socket.setTimeout(10_000, () => socket.destroy());
  });
}

const statusOf = (reply: string) => Number(reply.split(' ', 2)[1]);
const bodyOf = (reply: string) => JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4));

describe('an IP address spelt another way does not pass to.hosts or a * route', () => {
  let ca: TestCa;
  let dir: string;
  let app: TestApp;
  let sidecar: TestSidecar;
  let caller: TestSvid;
  let trap: Server;
  let trapped = 0;

  beforeAll(async () => {
    ca = await TestCa.create(TD);
    dir = mkdtempSync(join(tmpdir(), 'meshauth-host-ip-'));
    writeFileSync(join(dir, 'policy.yaml'), POLICY);
    app = await startApp();
    // Where a `*` route's `{host}` would lead an IP literal: every connection counted, none answered.
    trap = createServer((socket) => {
      trapped += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', resolve));
    const trapPort = (trap.address() as { port: number }).port;
    const config = sidecarConfigFromObject(
      {
        trustDomain: TD,
        ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent', token: '/nonexistent' },
        inbound: { listen: '127.0.0.1:0', app: `127.0.0.1:${app.port}`, policy: join(dir, 'policy.yaml') },
        outbound: {
          listen: '127.0.0.1:0',
          timeout: '3s',
          routes: {
            '*': { address: `{host}:${trapPort}` },
            '*.cafe': { address: `{host}:${trapPort}` },
            '*.*': { address: `{host}:${trapPort}` },
          },
        },
        admin: { listen: '127.0.0.1:0' },
      },
      'host-ip-spellings',
    );
    sidecar = await startTestSidecar(ca, `spiffe://${TD}/ns/edge/sa/svc`, config);
    caller = await ca.issue({ id: `spiffe://${TD}/ns/shop/sa/caller` });
  });
  afterAll(async () => {
    await sidecar?.sidecar.close(0);
    await app?.close();
    await new Promise((resolve) => (trap ? trap.close(resolve) : resolve(undefined)));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const inbound = (host: string) =>
    rawTlsExchange(
      sidecar.sidecar.inboundPort,
      caller,
      ca.bundlePem,
      `GET /x HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
    );

  it('ok/an ordinary name reaches the app', async () => {
    const seen = app.seen.length;
    expect(statusOf(await inbound('b.mesh'))).toBe(200);
    expect(app.seen.length).toBe(seen + 1);
  });

  it.each(['127.0.0.1', '[::1]', '127.0.0.1:8080', '127.0.0.1.', '[::1]:80'])(
    'fail/HTTP/1.1 Host %s is the denied host (403)',
    async (host) => {
      const reply = await inbound(host);
      expect(statusOf(reply)).toBe(403);
      expect(bodyOf(reply)).toMatchObject({ code: 'MESHAUTH_ERR_FORBIDDEN' });
    },
  );

  it.each([
    '127.1',
    '2130706433',
    '0x7f.0.0.1',
    '127.0.0.01',
    '127.1:8080',
    '[0::1]',
    '[0:0:0:0:0:0:0:1]',
    '[::0001]',
    '[::ffff:127.0.0.1]',
  ])('fail/HTTP/1.1 Host %s is refused before any rule (400), never reaching the app', async (host) => {
    const seen = app.seen.length;
    const reply = await inbound(host);
    expect(statusOf(reply)).toBe(400);
    expect(bodyOf(reply)).toMatchObject({ code: 'MESHAUTH_ERR_BAD_REQUEST' });
    expect(app.seen.length).toBe(seen);
  });

  it.each([
    ['127.0.0.1', 403],
    ['127.1', 400],
    ['[0::1]', 400],
  ])('fail/HTTP/2 :authority %s is answered %i, as the Host line is', async (authority, status) => {
    const seen = app.seen.length;
    const session = await mtlsH2Session(sidecar.sidecar.inboundPort, caller, ca.bundlePem);
    try {
      const answer = await h2Answer(session, { ':method': 'GET', ':path': '/x', ':authority': authority });
      expect(answer.status).toBe(status);
    } finally {
      session.close();
    }
    expect(app.seen.length).toBe(seen);
  });

  it.each([
    ['[::ffff:7f00:1]', '*'],
    ['[::ffff:0:0]', '*'],
    ['[::1]', '*'],
    ['[a:b.cafe]', '*.cafe'],
    ['127.1', '*.*'],
  ])('fail/outbound Host %s matches no %s route: 502 ROUTE_NOT_FOUND, nothing dialled', async (host) => {
    const before = trapped;
    const reply = await rawExchange(
      sidecar.sidecar.outboundPort,
      `GET /x HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
    );
    expect(statusOf(reply)).toBe(502);
    expect(bodyOf(reply)).toMatchObject({ code: 'MESHAUTH_ERR_ROUTE_NOT_FOUND' });
    expect(trapped).toBe(before);
  });
});
