// Endpoints behind a DNS name (real dnsmasq on 127.0.0.1, peers on 127.0.0.2–127.0.0.4 sharing one port): the
// outbound balances per request over every A record, loses no idempotent request when an endpoint dies mid-load
// (the share moves to the others and the dead one is ejected), follows records that change, and checks pattern
// routes' expected IDs per requested host. An endpoint that presents another workload's identity (a stale record)
// is retried around and ejected: it used to carry no stream, win every power-of-two pick and fail two thirds of the
// requests with 502.

import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { createLogger } from '../../src/telemetry/index.js';
import { type DnsServer, startDnsServer } from '../helpers/dns-server.js';
import { available, startTestSidecar, type TestSidecar } from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';
import { eventually, waitFor } from '../helpers/wait.js';

interface Peer {
  readonly host: string;
  served: number;
  /** Wall-clock times (ms) of served requests, to see when the share moved. */
  readonly times: number[];
  readonly sessionsClosed: () => number;
  kill(): Promise<void>;
}

const HAS_DNSMASQ = available('dnsmasq');

describe.skipIf(!HAS_DNSMASQ)('outbound endpoints behind a DNS name', () => {
  let ca: TestCa;
  let dns: DnsServer;
  let port = 0;
  let peerSvid: TestSvid;
  const peers = new Map<string, Peer>();
  const clients: TestSidecar[] = [];
  const logs: { msg: string; [k: string]: unknown }[] = [];
  const peerId = 'spiffe://example.org/ns/shop/sa/orders';

  async function startPeer(host: string, svid: TestSvid, listenPort: number): Promise<{ peer: Peer; port: number }> {
    const sockets = new Set<TLSSocket>();
    let closed = 0;
    const server: Http2SecureServer = createSecureServer({
      cert: svid.chainPem,
      key: svid.keyPem,
      ca: ca.bundlePem,
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2', 'http/1.1'],
      allowHTTP1: true,
    });
    const peer: Peer = {
      host,
      served: 0,
      times: [],
      sessionsClosed: () => closed,
      kill: async () => {
        // A crash, not a drain: the listener goes away and every connection is cut without GOAWAY.
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          for (const socket of sockets) socket.destroy();
        });
      },
    };
    server.on('secureConnection', (socket: TLSSocket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    server.on('session', (session) => session.once('close', () => closed++));
    const serve = (answer: () => void) => {
      peer.served++;
      peer.times.push(Date.now());
      // A little latency, so that requests overlap and in-flight counts mean something.
      setTimeout(answer, 2);
    };
    // HTTP/2 through the stream API, the head and the body written together (a kill then never falls between them);
    // HTTP/1.1 (an outbound with `http2: false`) through node:http's request, which HTTP/2 streams skip here.
    server.on('stream', (stream) => {
      stream.on('error', () => undefined);
      serve(() => {
        if (stream.destroyed) return;
        stream.respond({ ':status': 200, 'content-type': 'text/plain' });
        stream.end(host);
      });
    });
    server.on('request', (req, res) => {
      if (req.httpVersionMajor !== 1) return;
      req.on('error', () => undefined);
      res.on('error', () => undefined);
      req.resume();
      serve(() => {
        if (!res.destroyed) res.writeHead(200, { 'content-type': 'text/plain' }).end(host);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listenPort, host, () => resolve());
    });
    return { peer, port: (server.address() as { port: number }).port };
  }

  async function client(
    routes: Record<string, { address: string; ids: string[] }>,
    http2 = true,
  ): Promise<TestSidecar> {
    const config = sidecarConfigFromObject(
      {
        trustDomain: 'example.org',
        ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent/bundle.pem', token: '/nonexistent/token' },
        inbound: { listen: '127.0.0.1:0', app: '127.0.0.1:1' },
        outbound: { listen: '127.0.0.1:0', routes, dns: { servers: [dns.address] }, http2 },
        admin: { listen: '127.0.0.1:0' },
      },
      'test-config',
    );
    const logger = createLogger({
      level: 'info',
      destination: { write: (line: string) => logs.push(JSON.parse(line)) },
    });
    const sidecar = await startTestSidecar(ca, ca.idFor('/ns/front/sa/web'), config, { logger });
    clients.push(sidecar);
    return sidecar;
  }

  beforeAll(async () => {
    ca = await TestCa.create();
    const svid = await ca.issue({ id: peerId });
    peerSvid = svid;
    // One port for the three addresses (DNS carries no port): the first peer picks it, the others reuse it.
    const first = await startPeer('127.0.0.2', svid, 0);
    port = first.port;
    peers.set('127.0.0.2', first.peer);
    for (const host of ['127.0.0.3', '127.0.0.4']) peers.set(host, (await startPeer(host, svid, port)).peer);
    dns = await startDnsServer({ 'orders.shop.test': ['127.0.0.2', '127.0.0.3', '127.0.0.4'] });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.sidecar.close(0)));
    for (const peer of peers.values()) await peer.kill();
    await dns?.close();
  });

  /** `total` GETs through the outbound over `concurrency` keep-alive connections; statuses and errors. */
  async function load(
    outboundPort: number,
    host: string,
    total: number,
    concurrency: number,
    onProgress?: (done: number) => void,
    method: 'get' | 'mixed' = 'get',
  ): Promise<{ statuses: Map<number, number>; errors: string[]; bodies: Map<string, number> }> {
    const agent = new HttpAgent({ keepAlive: true, maxSockets: concurrency });
    const statuses = new Map<number, number>();
    const bodies = new Map<string, number>();
    const errors: string[] = [];
    let next = 0;
    let done = 0;
    const worker = async () => {
      while (next < total) {
        const i = next++;
        await new Promise<void>((resolve) => {
          const req = httpRequest(
            {
              host: '127.0.0.1',
              port: outboundPort,
              path: `http://${host}/r${i}`,
              headers: { host },
              agent,
              method: i % 4 === 3 && method === 'mixed' ? 'POST' : 'GET',
            },
            (res) => {
              let body = '';
              res.on('data', (d: Buffer) => {
                body += d.toString();
              });
              res.on('end', () => {
                statuses.set(res.statusCode ?? 0, (statuses.get(res.statusCode ?? 0) ?? 0) + 1);
                if (res.statusCode === 200) bodies.set(body, (bodies.get(body) ?? 0) + 1);
                resolve();
              });
              res.on('error', (e) => {
                errors.push(String(e));
                resolve();
              });
            },
          );
          req.on('error', (e) => {
            errors.push(String(e));
            resolve();
          });
          req.end(req.method === 'POST' ? 'an order' : undefined);
        });
        onProgress?.(++done);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    agent.destroy();
    return { statuses, errors, bodies };
  }

  async function metricValue(sidecar: TestSidecar, name: string, labels: Record<string, string>): Promise<number> {
    const metric = sidecar.metrics.registry.getSingleMetric(name);
    const values = (await metric?.get())?.values ?? [];
    let sum = 0;
    for (const v of values) {
      if (Object.entries(labels).every(([k, l]) => v.labels[k] === l)) sum += v.value;
    }
    return sum;
  }

  it('ok/three endpoints behind one name share the load within ±15 %', async () => {
    const a = await client({ 'orders.shop': { address: `orders.shop.test:${port}`, ids: [peerId] } });
    for (const peer of peers.values()) peer.served = 0;
    const total = 3_000;
    const result = await load(a.sidecar.outboundPort, 'orders.shop', total, 16);
    expect(result.errors).toEqual([]);
    expect([...result.statuses.entries()]).toEqual([[200, total]]);
    const shares = [...peers.values()].map((p) => p.served / total);
    console.log('shares per endpoint', Object.fromEntries([...peers.values()].map((p) => [p.host, p.served])));
    for (const share of shares) {
      expect(share).toBeGreaterThan((1 / 3) * 0.85);
      expect(share).toBeLessThan((1 / 3) * 1.15);
    }
    expect(await metricValue(a, 'meshauth_endpoints', { route: 'orders.shop', state: 'active' })).toBe(3);
    // dnsmasq without an upstream refuses the AAAA query of a name it has only A records for: `partial` (the IPv4
    // answer used, IPv6 endpoints kept as they were); a cluster DNS answers it empty, `success`.
    const success = await metricValue(a, 'meshauth_dns_resolutions_total', { result: 'success' });
    const partial = await metricValue(a, 'meshauth_dns_resolutions_total', { result: 'partial' });
    expect(success + partial).toBeGreaterThan(0);
  }, 60_000);

  it('ok/an endpoint killed mid-load costs no idempotent request; its share moves to the others', async () => {
    const a = await client({ 'kill.shop': { address: `orders.shop.test:${port}`, ids: [peerId] } });
    const victim = peers.get('127.0.0.4') as Peer;
    const total = 3_000;
    let killedAt = 0;
    let killing: Promise<void> | undefined;
    const result = await load(a.sidecar.outboundPort, 'kill.shop', total, 16, (done) => {
      if (done === 1_000) {
        killedAt = Date.now();
        killing = victim.kill();
      }
    });
    await killing;
    expect(result.errors).toEqual([]);
    expect([...result.statuses.entries()]).toEqual([[200, total]]);
    // Within 2 s of the kill the victim serves nothing (it cannot, it is dead) and the others took its share.
    const lateForVictim = result.bodies.get('127.0.0.4') ?? 0;
    expect(victim.times.filter((t) => t > killedAt + 2_000)).toEqual([]);
    expect((result.bodies.get('127.0.0.2') ?? 0) + (result.bodies.get('127.0.0.3') ?? 0)).toBe(total - lateForVictim);
    console.log('after kill', Object.fromEntries(result.bodies), {
      retries: await metricValue(a, 'meshauth_request_retries_total', {}),
      ejections: await metricValue(a, 'meshauth_endpoint_ejections_total', { route: 'kill.shop' }),
    });
    // Ejected after consecutive connect failures; each failed probe (after 1 s, 2 s, …) ejects it again.
    expect(await metricValue(a, 'meshauth_endpoint_ejections_total', { route: 'kill.shop' })).toBeGreaterThanOrEqual(1);
    expect(await metricValue(a, 'meshauth_endpoints', { route: 'kill.shop', state: 'ejected' })).toBe(1);
    expect(
      logs.some((l) => l.msg === 'endpoint ejected after consecutive connect failures' && l.route === 'kill.shop'),
    ).toBe(true);

    // The endpoint comes back: a probe (after at most the bounded ejection time) finds it and it rejoins.
    const revived = (await startPeer('127.0.0.4', peerSvid, port)).peer;
    peers.set('127.0.0.4', revived);
    await waitFor(
      'the revived endpoint to serve',
      async () => {
        const round = await load(a.sidecar.outboundPort, 'kill.shop', 50, 4);
        expect([...round.statuses.keys()]).toEqual([200]);
        return revived.served > 0;
      },
      40_000,
      250,
    );
    expect(await metricValue(a, 'meshauth_endpoints', { route: 'kill.shop', state: 'ejected' })).toBe(0);
    expect(await metricValue(a, 'meshauth_endpoints', { route: 'kill.shop', state: 'active' })).toBe(3);
  }, 90_000);

  it('ok/a name whose records change is followed; the removed endpoint is drained', async () => {
    const a = await client({ 'moving.shop': { address: `moving.shop.test:${port}`, ids: [peerId] } });
    await dns.setRecords({ 'orders.shop.test': ['127.0.0.2', '127.0.0.3'], 'moving.shop.test': ['127.0.0.2'] });
    const before = await load(a.sidecar.outboundPort, 'moving.shop', 50, 4);
    expect([...before.bodies.keys()]).toEqual(['127.0.0.2']);
    const closedBefore = (peers.get('127.0.0.2') as Peer).sessionsClosed();
    await dns.setRecords({ 'orders.shop.test': ['127.0.0.2', '127.0.0.3'], 'moving.shop.test': ['127.0.0.3'] });
    // TTL 1 s (bounded below by 1 s): within a few seconds every request goes to the new address.
    await waitFor(
      'every request at the new address',
      async () => {
        const round = await load(a.sidecar.outboundPort, 'moving.shop', 20, 2);
        expect([...round.statuses.keys()]).toEqual([200]);
        return round.bodies.get('127.0.0.3') === 20;
      },
      10_000,
      200,
    );
    // The session to the removed address was closed (drained), not kept.
    await eventually(() => (peers.get('127.0.0.2') as Peer).sessionsClosed() > closedBefore);
    expect((peers.get('127.0.0.2') as Peer).sessionsClosed()).toBeGreaterThan(closedBefore);
    expect(
      logs.some((l) => l.msg === 'endpoint removed (no longer in DNS); draining' && l.route === 'moving.shop'),
    ).toBe(true);
  }, 30_000);

  it('ok/pattern route: {host} address and a /sa/* ID pattern with {namespace}; fail/another namespace → 502', async () => {
    await dns.setRecords({
      'orders.shop.test': ['127.0.0.2', '127.0.0.3'],
      'orders.shop.svc.test': ['127.0.0.2'],
      'orders.other.svc.test': ['127.0.0.3'],
    });
    const a = await client({
      '*.*.svc.test': { address: `{host}:${port}`, ids: ['spiffe://example.org/ns/{namespace}/sa/*'] },
    });
    const ok = await load(a.sidecar.outboundPort, 'orders.shop.svc.test', 5, 1);
    expect([...ok.statuses.entries()]).toEqual([[200, 5]]);
    // The peer at orders.other.svc.test presents ns/shop: not an ID of namespace "other".
    const wrong = await load(a.sidecar.outboundPort, 'orders.other.svc.test', 1, 1);
    expect([...wrong.statuses.entries()]).toEqual([[502, 1]]);
    expect(await metricValue(a, 'meshauth_requests_rejected_total', { code: 'MESHAUTH_ERR_PEER_IDENTITY' })).toBe(1);
  }, 30_000);

  it.each([
    ['HTTP/2', true],
    ['HTTP/1.1', false],
  ])(
    'ok/%s: an endpoint with another identity is retried around and ejected: no request fails; fail/a route expecting the wrong ID still answers 502',
    async (_name, http2) => {
      if (!peers.has('127.0.0.5')) {
        const impostor = await startPeer(
          '127.0.0.5',
          await ca.issue({ id: 'spiffe://example.org/ns/other/sa/x' }),
          port,
        );
        peers.set('127.0.0.5', impostor.peer);
      }
      await dns.setRecords({ 'mixed.shop.test': ['127.0.0.2', '127.0.0.3', '127.0.0.5'] });
      const a = await client(
        {
          'mixed.shop': { address: `mixed.shop.test:${port}`, ids: [peerId] },
          'wrongid.shop': { address: `mixed.shop.test:${port}`, ids: ['spiffe://example.org/ns/shop/sa/payments'] },
        },
        http2,
      );
      const total = 300;
      const result = await load(a.sidecar.outboundPort, 'mixed.shop', total, 16, undefined, 'mixed');
      expect(result.errors).toEqual([]);
      expect([...result.statuses.entries()]).toEqual([[200, total]]);
      expect(result.bodies.get('127.0.0.5')).toBeUndefined();
      expect(await metricValue(a, 'meshauth_endpoint_ejections_total', { route: 'mixed.shop' })).toBeGreaterThanOrEqual(
        1,
      );
      expect(await metricValue(a, 'meshauth_endpoints', { route: 'mixed.shop', state: 'ejected' })).toBe(1);
      expect(await metricValue(a, 'meshauth_request_retries_total', { reason: 'connect' })).toBeGreaterThanOrEqual(1);

      // Every endpoint is "another identity" for this route: all ejected, the set still tries one, and the caller gets
      // the identity error, not a vaguer unavailable.
      const wrong = await load(a.sidecar.outboundPort, 'wrongid.shop', 12, 2);
      expect([...wrong.statuses.entries()]).toEqual([[502, 12]]);
      expect(await metricValue(a, 'meshauth_requests_rejected_total', { code: 'MESHAUTH_ERR_PEER_IDENTITY' })).toBe(12);
    },
    60_000,
  );
});
