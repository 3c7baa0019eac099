// Admin probe endpoints on real sockets: /livez (+ /healthz), /startupz (SVID only, never the app), /readyz, and
// /app-health/<container>/<kind> forwarded to the app's own probe on 127.0.0.1 — the app's status comes back,
// anything not configured is 404, and nothing but the configured loopback port and path is ever asked.
import { createServer, get as httpGet, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSidecarConfig } from '../../src/config/index.js';
import { AdminServer, type AppProbeTargets } from '../../src/telemetry/admin-server.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';

interface AppServer {
  readonly server: Server;
  readonly port: number;
  readonly seen: { path: string; host: string | undefined; userAgent: string | undefined }[];
}

async function startApp(): Promise<AppServer> {
  const seen: AppServer['seen'] = [];
  const server = createServer((req: IncomingMessage, res) => {
    seen.push({ path: req.url ?? '', host: req.headers.host, userAgent: req.headers['user-agent'] });
    switch (req.url) {
      case '/healthz':
        res.writeHead(200).end('fine');
        return;
      case '/ready?deep=1':
        res.writeHead(503).end('warming up');
        return;
      case '/health%20check/%C5%BC%C3%B3%C5%82w':
        res.writeHead(200).end('encoded');
        return;
      case '/started':
        res.writeHead(204).end();
        return;
      case '/moved':
        res.writeHead(302, { location: 'http://example.com/' }).end();
        return;
      case '/big':
        res.writeHead(200);
        res.end(Buffer.alloc(1024 * 1024, 0x61));
        return;
      default:
        // '/hang': never answers; the forward's timeout ends it.
        if (req.url !== '/hang') res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, seen };
}

describe('admin probe endpoints', () => {
  let app: AppServer;
  let admin: AdminServer;
  let started = false;
  let ready = false;
  const get = (path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${admin.port}${path}`, init);

  beforeAll(async () => {
    app = await startApp();
    // A port that was free a moment ago: nothing listens there.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const appProbes: AppProbeTargets = new Map([
      [
        'api',
        {
          livez: { port: app.port, path: '/healthz' },
          readyz: { port: app.port, path: '/ready?deep=1' },
          startupz: { port: app.port, path: '/started' },
        },
      ],
      ['worker', { livez: { port: closedPort, path: '/healthz' }, readyz: { port: app.port, path: '/hang' } }],
      ['redirector', { livez: { port: app.port, path: '/moved' }, readyz: { port: app.port, path: '/big' } }],
      ['spaced', { livez: { port: app.port, path: '/health check/żółw' } }],
    ]);
    admin = new AdminServer({
      host: '127.0.0.1',
      port: 0,
      metrics: new Metrics(),
      logger: silentLogger(),
      readiness: () => ready,
      startup: () => started,
      appProbes,
      appProbeTimeoutMs: 300,
    });
    await admin.listen();
  });
  afterAll(async () => {
    await admin?.close();
    await new Promise<void>((resolve) => (app ? app.server.close(() => resolve()) : resolve()));
  });

  it('ok/livez and its alias healthz answer 200 while the sidecar has no SVID', async () => {
    expect((await get('/livez')).status).toBe(200);
    expect((await get('/healthz')).status).toBe(200);
  });

  it('ok/startupz follows the SVID alone: 503 before, 200 after, whatever readiness says', async () => {
    started = false;
    expect((await get('/startupz')).status).toBe(503);
    started = true;
    ready = false;
    expect((await get('/startupz')).status).toBe(200);
    expect((await get('/readyz')).status).toBe(503);
    ready = true;
    expect((await get('/readyz')).status).toBe(200);
  });

  it('ok/app-health forwards to the configured loopback port and path and answers the app status', async () => {
    const before = app.seen.length;
    const live = await get('/app-health/api/livez', { headers: { 'user-agent': 'kube-probe/1.31' } });
    expect(live.status).toBe(200);
    expect(await live.text()).toBe('app api livez: 200\n');
    expect((await get('/app-health/api/readyz')).status).toBe(503);
    expect((await get('/app-health/api/startupz')).status).toBe(204);
    const seen = app.seen.slice(before);
    expect(seen.map((s) => s.path)).toEqual(['/healthz', '/ready?deep=1', '/started']);
    expect(seen[0]?.host).toBe(`127.0.0.1:${app.port}`);
    expect(seen[0]?.userAgent).toBe('kube-probe/1.31');
  });

  it('ok/a path with a space or letters outside ASCII reaches the app percent-encoded, as the kubelet sends it', async () => {
    // Found in review: Node refused such a path raw, so the probe answered 500 on every call after injection.
    const before = app.seen.length;
    expect((await get('/app-health/spaced/livez')).status).toBe(200);
    expect(app.seen.slice(before).map((s) => s.path)).toEqual(['/health%20check/%C5%BC%C3%B3%C5%82w']);
  });

  it('ok/the query of the admin request is not passed on (the configured path is all the app sees)', async () => {
    const before = app.seen.length;
    expect((await get('/app-health/api/livez?x=/admin')).status).toBe(200);
    expect(app.seen.slice(before).map((s) => s.path)).toEqual(['/healthz']);
  });

  it('ok/a redirect status is passed on without its Location; a large body is not buffered', async () => {
    const moved = await get('/app-health/redirector/livez', { redirect: 'manual' });
    expect(moved.status).toBe(302);
    expect(moved.headers.get('location')).toBeNull();
    expect((await get('/app-health/redirector/readyz')).status).toBe(200);
  });

  it('fail/app-health is 503 when the app port is closed or the app does not answer in time', async () => {
    expect((await get('/app-health/worker/livez')).status).toBe(503);
    expect((await get('/app-health/worker/readyz')).status).toBe(503);
  });

  it('fail/unknown containers, kinds and path tricks are 404 and reach nothing', async () => {
    const before = app.seen.length;
    for (const path of [
      '/app-health/nobody/livez',
      '/app-health/worker/startupz',
      '/app-health/api/metrics',
      '/app-health/api/livez/extra',
      '/app-health/api%2F..%2Flivez',
      '/app-health/API/livez',
      '/app-health/',
      '/app-health/api',
    ]) {
      expect((await get(path)).status, path).toBe(404);
    }
    // fetch would resolve the dots itself: send the literal path.
    const literal = await new Promise<number>((resolve, reject) => {
      httpGet({ host: '127.0.0.1', port: admin.port, path: '/app-health/api/../livez' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).once('error', reject);
    });
    expect(literal).toBe(404);
    expect(app.seen.length).toBe(before);
  });

  it('fail/app-health refuses methods other than GET and HEAD', async () => {
    expect((await get('/app-health/api/livez', { method: 'POST' })).status).toBe(405);
    const head = await get('/app-health/api/livez', { method: 'HEAD' });
    expect(head.status).toBe(200);
  });
});

describe('admin server with appProbes from a sidecar config (as sidecar.ts passes them)', () => {
  it('ok/admin.appProbes of MESHAUTH_CONFIG_YAML reach the app', async () => {
    const app = await startApp();
    const config = loadSidecarConfig(undefined, {
      MESHAUTH_CONFIG_YAML: [
        'trustDomain: example.org',
        'ca: { url: "https://ca:8443", bundle: /b.pem, token: /t }',
        `admin: { appProbes: { api: { livez: { port: ${app.port}, path: /healthz } } } }`,
      ].join('\n'),
    });
    const admin = new AdminServer({
      host: '127.0.0.1',
      port: 0,
      metrics: new Metrics(),
      logger: silentLogger(),
      readiness: () => true,
      appProbes: config.admin.appProbes,
    });
    await admin.listen();
    try {
      expect((await fetch(`http://127.0.0.1:${admin.port}/app-health/api/livez`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${admin.port}/app-health/api/readyz`)).status).toBe(404);
    } finally {
      await admin.close();
      await new Promise<void>((resolve) => app.server.close(() => resolve()));
    }
  });
});

describe('admin server defaults (no startup, no appProbes)', () => {
  it('ok/startupz answers 200 and app-health is 404 when the options are not given', async () => {
    const admin = new AdminServer({
      host: '127.0.0.1',
      port: 0,
      metrics: new Metrics(),
      logger: silentLogger(),
      readiness: () => false,
    });
    await admin.listen();
    try {
      expect((await fetch(`http://127.0.0.1:${admin.port}/startupz`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${admin.port}/app-health/app/livez`)).status).toBe(404);
    } finally {
      await admin.close();
    }
  });
});
