// An exact route whose address is a DNS name keeps its endpoint set however long it sat idle: once the DNS server is
// gone, the next request still reaches the last known endpoint. A pattern route's per-host set is still closed
// when idle. Real dnsmasq on 127.0.0.1, one mTLS HTTP/2 peer on 127.0.0.2; the idle sweep is shortened.
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RouteConfig } from '../../src/config/index.js';
import type { Endpoint } from '../../src/sidecar/endpoints/endpoint.js';
import type { EndpointSet } from '../../src/sidecar/endpoints/endpoint-set.js';
import { Http1Client } from '../../src/sidecar/http1-client.js';
import type { PeerSessions } from '../../src/sidecar/outbound/peer-sessions.js';
import { createLogger } from '../../src/telemetry/index.js';
import { type DnsServer, startDnsServer } from '../helpers/dns-server.js';
import { peerSessionsOf, routeOf } from '../helpers/peer-sessions.js';
import { available, testConfig } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

const HAS_DNSMASQ = available('dnsmasq');
const PEER_ID = 'spiffe://example.org/ns/shop/sa/orders';

describe.skipIf(!HAS_DNSMASQ)('outbound endpoint sets of idle routes', () => {
  let dns: DnsServer;
  let peer: Http2SecureServer;
  let sessions: PeerSessions;
  let exact: RouteConfig;
  let pattern: RouteConfig;
  const logs: { msg: string; [k: string]: unknown }[] = [];

  beforeAll(async () => {
    const ca = await TestCa.create();
    const peerSvid = await ca.issue({ id: PEER_ID });
    peer = createSecureServer({
      cert: peerSvid.chainPem,
      key: peerSvid.keyPem,
      ca: ca.bundlePem,
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
    });
    peer.on('stream', (stream) => {
      stream.on('error', () => undefined);
      stream.respond({ ':status': 200 });
      stream.end('served');
    });
    await new Promise<void>((resolve, reject) => {
      peer.once('error', reject);
      peer.listen(0, '127.0.0.2', () => resolve());
    });
    const port = (peer.address() as { port: number }).port;
    dns = await startDnsServer({ 'orders.mesh.test': ['127.0.0.2'], 'orders.svc.test': ['127.0.0.2'] });
    const config = testConfig({
      appPort: 1,
      routes: {
        'orders.mesh': { address: `orders.mesh.test:${port}`, ids: [PEER_ID] },
        '*.svc.test': { address: `{host}:${port}`, ids: [PEER_ID] },
      },
      dnsServers: [dns.address],
    });
    exact = routeOf(config, 'orders.mesh');
    pattern = routeOf(config, '*.svc.test');
    sessions = await peerSessionsOf(ca, config, {
      logger: createLogger({ level: 'debug', destination: { write: (line: string) => logs.push(JSON.parse(line)) } }),
      // Idle well past a local DNS answer (a set is picked from before its first resolution finishes).
      sweep: { idleMs: 1_000, intervalMs: 50 },
    });
  });
  afterAll(async () => {
    await sessions?.close(0);
    await new Promise<void>((resolve) => (peer ? peer.close(() => resolve()) : resolve()));
    await dns?.close();
  });

  /** One GET over the set's chosen endpoint, counted in flight as the outbound's exchanges count theirs. */
  async function get(set: EndpointSet): Promise<string> {
    const endpoint = await set.pick();
    endpoint.inflight += 1;
    try {
      return await getOn(endpoint);
    } finally {
      endpoint.inflight -= 1;
    }
  }

  /** The status and body the peer answered. */
  async function getOn(endpoint: Endpoint): Promise<string> {
    const session = await endpoint.target();
    if (session === undefined || session instanceof Http1Client) throw new Error('expected an HTTP/2 session');
    const stream = session.request({ ':method': 'GET', ':path': '/', ':authority': 'orders.mesh' });
    stream.end();
    return new Promise((resolve, reject) => {
      let status = 0;
      let body = '';
      stream.on('response', (headers) => {
        status = Number(headers[':status']);
      });
      stream.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      stream.on('end', () => resolve(`${status} ${body}`));
      stream.on('error', reject);
    });
  }

  it('ok/an idle exact DNS route keeps its last known endpoints through a DNS outage; an idle pattern host set is closed', async () => {
    const exactSet = sessions.setFor(exact, 'orders.mesh');
    expect(await get(exactSet)).toBe('200 served');
    // Used after the exact set: once the sweep closed it, the exact one was idle for at least as long.
    const hostSet = sessions.setFor(pattern, 'orders.svc.test');
    expect(await get(hostSet)).toBe('200 served');

    await waitFor('the idle pattern host set to be closed', () => hostSet.endpoints.length === 0, 10_000);
    expect(sessions.setFor(pattern, 'orders.svc.test')).not.toBe(hostSet);

    await dns.close();
    expect(await get(sessions.setFor(exact, 'orders.mesh'))).toBe('200 served');
    expect(exactSet.endpoints.map((e) => e.address)).toEqual(['127.0.0.2']);
    // The route's name was asked again and failed: the endpoints kept are the last known ones, not a fresh answer.
    await waitFor(
      'a failed DNS query for the exact route',
      () =>
        logs.some(
          (l) => l.msg === 'DNS resolution failed; keeping the last known endpoints' && l.route === 'orders.mesh',
        ),
      10_000,
    );
    expect(sessions.setFor(exact, 'orders.mesh')).toBe(exactSet);
    expect(await get(exactSet)).toBe('200 served');
    expect(logs.some((l) => l.msg === 'DNS resolution failed; no endpoints yet' && l.route === 'orders.mesh')).toBe(
      false,
    );
  }, 30_000);
});
