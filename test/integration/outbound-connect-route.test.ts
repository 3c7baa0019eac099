// HTTP clients that tunnel through an HTTP proxy even to http:// URLs (undici's ProxyAgent, Node's fetch with
// NODE_USE_ENV_PROXY=1, which injected pods get) send `CONNECT host:80` first. To a mesh route's host the outbound
// answers 200 and serves the plain HTTP/1.1 inside the tunnel like any request sent to it: route, passport, mTLS
// to the peer, XFCC at app B. Port 443 to a route host is refused (no TLS interception), as is a host that is
// neither a route nor allowed egress.
import { spawn } from 'node:child_process';
import { ProxyAgent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logLines } from '../helpers/log-lines.js';
import { echoApp, type SidecarPair, startPair } from '../helpers/sidecar-harness.js';
import { rawHttpExchange } from '../helpers/tcp-client.js';
import { TestCa } from '../helpers/test-ca.js';

const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

describe('outbound: CONNECT to a mesh route host', () => {
  let ca: TestCa;
  let pair: SidecarPair;
  const logs = logLines('outbound', 'info');
  /** Answers of /slow wait until this is called. */
  let releaseSlow: () => void = () => {};

  beforeAll(async () => {
    ca = await TestCa.create();
    pair = await startPair(ca, {
      loggerA: logs.logger,
      appHandler: (req, res, seen) => {
        if (req.url !== '/slow') {
          echoApp(req, res, seen);
          return;
        }
        releaseSlow = () => echoApp(req, res, seen);
      },
    });
  });

  afterAll(async () => {
    await pair?.close();
  });

  it('ok/undici ProxyAgent: two requests through one tunnel reach app B with XFCC naming A', async () => {
    const agent = new ProxyAgent(pair.proxyUrl);
    try {
      const before = pair.appB.seen.length;
      for (const path of ['/tunnel/1', '/tunnel/2?x=1']) {
        const res = await undiciFetch(`http://b.mesh${path}`, { dispatcher: agent });
        expect(res.status).toBe(200);
        await res.arrayBuffer();
      }
      const seen = pair.appB.seen.slice(before);
      expect(seen.map((s) => s.url)).toEqual(['/tunnel/1', '/tunnel/2?x=1']);
      for (const request of seen) {
        expect(request.headers.host).toBe('b.mesh');
        expect(request.headers['x-forwarded-client-cert']).toContain(`URI=${pair.idA}`);
      }
    } finally {
      await agent.close();
    }
  });

  it('ok/a request inside the tunnel is counted like any outbound request', async () => {
    const agent = new ProxyAgent(pair.proxyUrl);
    try {
      const res = await undiciFetch('http://b.mesh/counted', { dispatcher: agent });
      await res.arrayBuffer();
      const outbound = await pair.a.metrics.registry.getSingleMetricAsString('meshauth_requests_total');
      expect(outbound).toMatch(new RegExp(`direction="outbound",peer_id="${pair.idB}",code="200"`));
    } finally {
      await agent.close();
    }
  });

  it.skipIf(NODE_MAJOR < 24)(
    'ok/Node fetch with NODE_USE_ENV_PROXY=1 and HTTP_PROXY (as injected) gets 200',
    async () => {
      const script =
        "fetch('http://b.mesh/from-node-fetch').then(async (r) => { await r.text(); console.log(r.status); })" +
        '.catch((e) => { console.log(String(e.cause ?? e)); process.exitCode = 1; });';
      const child = spawn(process.execPath, ['-e', script], {
        env: { PATH: process.env.PATH ?? '', NODE_USE_ENV_PROXY: '1', HTTP_PROXY: pair.proxyUrl, NO_PROXY: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
      });
      const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
      expect(out.trim()).toBe('200');
      expect(code).toBe(0);
      expect(pair.appB.seen.at(-1)?.url).toBe('/from-node-fetch');
    },
  );

  it('fail/CONNECT to a route host on port 443 → 403 route_tls, nothing reaches app B', async () => {
    const before = pair.appB.seen.length;
    const reply = await rawHttpExchange(
      pair.a.sidecar.outboundPort,
      'CONNECT b.mesh:443 HTTP/1.1\r\nHost: b.mesh:443\r\n\r\n',
    );
    expect(reply).toMatch(/^HTTP\/1\.1 403 /);
    expect(reply).toContain('MESHAUTH_ERR_EGRESS_FORBIDDEN');
    expect(logs.find({ code: 'MESHAUTH_ERR_EGRESS_FORBIDDEN', reason: 'route_tls', host: 'b.mesh' })).toHaveLength(1);
    expect(pair.appB.seen.length).toBe(before);
  });

  it('fail/CONNECT to a host that is neither a route nor egress → 403 egress_forbidden', async () => {
    const reply = await rawHttpExchange(
      pair.a.sidecar.outboundPort,
      'CONNECT other.mesh:80 HTTP/1.1\r\nHost: other.mesh:80\r\n\r\n',
    );
    expect(reply).toMatch(/^HTTP\/1\.1 403 /);
    expect(reply).toContain('MESHAUTH_ERR_EGRESS_FORBIDDEN');
  });

  it('ok/CONNECTs nested in a route tunnel add no listeners: the request after fifteen of them is served', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on('warning', onWarning);
    try {
      const connects = 'CONNECT b.mesh:80 HTTP/1.1\r\nHost: b.mesh:80\r\n\r\n'.repeat(15);
      const reply = await rawHttpExchange(
        pair.a.sidecar.outboundPort,
        `${connects}GET /nested HTTP/1.1\r\nHost: b.mesh\r\nConnection: close\r\n\r\n`,
      );
      expect(reply.split('HTTP/1.1 200 Connection Established').length - 1).toBe(15);
      expect(reply).toMatch(/HTTP\/1\.1 200 OK\r\n/);
      expect(pair.appB.seen.at(-1)?.url).toBe('/nested');
      expect(warnings).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('fail/a CONNECT pipelined behind a request still being answered closes the connection, no tunnel opens', async () => {
    const replying = rawHttpExchange(
      pair.a.sidecar.outboundPort,
      'GET /slow HTTP/1.1\r\nHost: b.mesh\r\n\r\nCONNECT b.mesh:80 HTTP/1.1\r\nHost: b.mesh:80\r\n\r\n' +
        'GET /inner HTTP/1.1\r\nHost: b.mesh\r\n\r\n',
    );
    const reply = await replying;
    releaseSlow();
    expect(reply).not.toContain('Connection Established');
    expect(pair.appB.seen.some((seen) => seen.url === '/inner')).toBe(false);
    expect(logs.find({ code: 'MESHAUTH_ERR_BAD_REQUEST', reason: 'connect_pipelined' })).toHaveLength(1);
  });

  it('fail/a request inside a route tunnel naming an unknown host → 502 route not found', async () => {
    const reply = await rawHttpExchange(
      pair.a.sidecar.outboundPort,
      'CONNECT b.mesh:80 HTTP/1.1\r\nHost: b.mesh:80\r\n\r\nGET /x HTTP/1.1\r\nHost: nowhere.mesh\r\nConnection: close\r\n\r\n',
    );
    expect(reply).toMatch(/^HTTP\/1\.1 200 Connection Established\r\n\r\nHTTP\/1\.1 502 /);
    expect(reply).toContain('MESHAUTH_ERR_ROUTE_NOT_FOUND');
  });
});
