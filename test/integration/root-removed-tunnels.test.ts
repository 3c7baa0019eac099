// Outside review (2026-12-02) probes: a root that leaves the bundle cuts tunnels and HTTP connections with resetSocket
// (InboundListener#keepOnlyPeersOf). The tunnel's app must see a reset (docs/tcp.md), for /1 as for /2; busy HTTP
// connections cut the same way must not crash the process.
import { createServer, type Server } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http2';
import { type AddressInfo, connect as netConnect, type Socket } from 'node:net';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CredentialHolder } from '../../src/agent/credential-holder.js';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { TrustBundle } from '../../src/pki/index.js';
import { type RunningSidecar, startSidecar } from '../../src/sidecar/index.js';
import { TCP_ALPN, TCP_ALPN_RAW } from '../../src/sidecar/tcp/index.js';
import { frameHeader } from '../../src/sidecar/tcp/tcp-framing.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { clientSecureContext } from '../../src/tls/index.js';
import { eventually, mtlsH2Session } from '../helpers/raw-app.js';
import { until } from '../helpers/tcp-client.js';
import { startTcpApp } from '../helpers/tcp-tunnel-pair.js';
import { TestCa } from '../helpers/test-ca.js';

let kept: TestCa;
let retired: TestCa;
const teardown: (() => Promise<void> | void)[] = [];
beforeAll(async () => {
  kept = await TestCa.create('example.org');
  retired = await TestCa.create('example.org');
});
afterEach(async () => {
  for (const fn of teardown.splice(0).reverse()) await fn();
});

async function sidecarWith(
  httpPort: number,
  tcpPort: number,
): Promise<{ sidecar: RunningSidecar; holder: CredentialHolder }> {
  const svid = await kept.issue({ id: kept.idFor('/ns/data/sa/db') });
  const holder = new CredentialHolder({
    svid: svid.svid,
    bundle: new TrustBundle(kept.trustDomain, [...kept.bundle.roots, ...retired.bundle.roots]),
  });
  const config = sidecarConfigFromObject(
    {
      trustDomain: 'example.org',
      ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent/bundle.pem', token: '/nonexistent/token' },
      inbound: { listen: '127.0.0.1:0', app: `127.0.0.1:${httpPort}`, tcp: { app: `127.0.0.1:${tcpPort}` } },
      outbound: { listen: '127.0.0.1:0' },
      admin: { listen: '127.0.0.1:0' },
    },
    'review',
  );
  const sidecar = await startSidecar(config, { logger: silentLogger(), metrics: new Metrics(), holder });
  teardown.push(() => sidecar.close(0));
  return { sidecar, holder };
}

async function tunnelClient(port: number, alpn: string): Promise<TLSSocket> {
  const svid = await retired.issue({ id: retired.idFor('/ns/shop/sa/old') });
  const tcp = netConnect({ host: '127.0.0.1', port, allowHalfOpen: true });
  tcp.on('error', () => undefined);
  const mesh = tlsConnect({
    socket: tcp,
    secureContext: clientSecureContext({ tls12: false }, { svid: svid.svid, bundle: kept.bundle }),
    ALPNProtocols: [alpn],
    checkServerIdentity: () => undefined,
  });
  mesh.allowHalfOpen = true;
  mesh.on('error', () => undefined);
  await new Promise<void>((resolve) => mesh.once('secureConnect', () => resolve()));
  teardown.push(() => void mesh.destroy());
  return mesh;
}

describe('a root leaves the bundle: its tunnels are cut as resets', () => {
  it.each([
    ['meshauth-tcp/2', TCP_ALPN],
    ['meshauth-tcp/1', TCP_ALPN_RAW],
  ])('fail/%s: the inbound app sees a reset, not a clean FIN, mid-stream', async (_name, alpn) => {
    let appEnded = false;
    let appError: (Error & { code?: string }) | undefined;
    let got = '';
    const app = await startTcpApp((socket: Socket) => {
      socket.on('data', (d: Buffer) => {
        got += d.toString();
      });
      socket.on('end', () => {
        appEnded = true;
      });
      socket.on('error', (e: Error) => {
        appError = e;
      });
    });
    teardown.push(() => app.close());
    const { sidecar, holder } = await sidecarWith(1, app.port);
    const mesh = await tunnelClient(sidecar.inboundPort, alpn);
    expect(mesh.alpnProtocol).toBe(alpn);
    const text = 'SET k partial-valu';
    mesh.write(alpn === TCP_ALPN ? Buffer.concat([frameHeader(text.length), Buffer.from(text)]) : text);
    await until('app got the bytes', () => got === text);
    const current = holder.current;
    if (current === undefined) throw new Error('no credentials');
    holder.set({ svid: current.svid, bundle: kept.bundle });
    await until('app sees the cut', () => appEnded || appError !== undefined, 3_000);
    expect({ appError: appError?.code, appEnded }).toEqual({ appError: 'ECONNRESET', appEnded: false });
  });
});

describe('a root leaves the bundle: busy HTTP connections are reset without harm', () => {
  let http: Server;
  it('ok/an h2 download and an HTTP/1.1 download in flight are cut; the sidecar keeps serving', async () => {
    const big = Buffer.alloc(16 * 1024 * 1024, 0x61);
    http = createServer((_req, res) => {
      res.end(big);
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    teardown.push(
      () =>
        new Promise<void>((r) => {
          http.closeAllConnections();
          http.close(() => r());
        }),
    );
    const { sidecar, holder } = await sidecarWith((http.address() as AddressInfo).port, 1);
    const bothRoots = `${kept.bundlePem}${retired.bundlePem}`;
    const oldSvid = await retired.issue({ id: retired.idFor('/ns/shop/sa/old') });
    const sessions = await Promise.all([1, 2, 3].map(() => mtlsH2Session(sidecar.inboundPort, oldSvid, bothRoots)));
    let received = 0;
    const done = sessions.map(
      (session) =>
        new Promise<void>((resolve) => {
          session.on('error', () => undefined);
          const stream = session.request({ ':method': 'GET', ':path': '/' }, { endStream: true });
          stream.on('response', (_h: IncomingHttpHeaders) => undefined);
          stream.on('data', (d: Buffer) => {
            received += d.length;
          });
          stream.on('error', () => undefined);
          stream.on('close', () => resolve());
        }),
    );
    // an HTTP/1.1 client mid-download too
    const h1 = tlsConnect({
      host: '127.0.0.1',
      port: sidecar.inboundPort,
      cert: oldSvid.chainPem,
      key: oldSvid.keyPem,
      ca: [bothRoots],
      ALPNProtocols: ['http/1.1'],
      checkServerIdentity: () => undefined,
    });
    h1.on('error', () => undefined);
    await new Promise<void>((r) => h1.once('secureConnect', () => r()));
    h1.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    h1.on('data', (d: Buffer) => {
      received += d.length;
    });
    await until('downloads under way', () => received > 1024 * 1024, 5_000);
    const current = holder.current;
    if (current === undefined) throw new Error('no credentials');
    holder.set({ svid: current.svid, bundle: kept.bundle });
    // Every stream ends (cut, or complete when it finished first) within a bound: a hang is a failure, not a timeout.
    const settled = await Promise.race([
      Promise.all(done).then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 10_000)),
    ]);
    expect(settled).toBe(true);
    expect(await eventually(() => h1.destroyed, 10_000)).toBe(true);
    // still serving a kept-root peer
    const fresh = await mtlsH2Session(
      sidecar.inboundPort,
      await kept.issue({ id: kept.idFor('/ns/shop/sa/a') }),
      bothRoots,
    );
    const status = await new Promise<number>((resolve) => {
      const s = fresh.request({ ':path': '/' }, { endStream: true });
      s.on('response', (h) => resolve(Number(h[':status'])));
      s.on('error', () => resolve(0));
      s.on('close', () => resolve(0));
      setTimeout(() => resolve(-1), 10_000).unref();
      s.resume();
    });
    fresh.close();
    expect(status).toBe(200);
  }, 30_000);
});
