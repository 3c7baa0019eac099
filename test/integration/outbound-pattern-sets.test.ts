// Pattern routes' endpoint sets (PeerSessions.setFor), on real sockets and a real DNS server. Found in review:
// - sets were keyed by the host called even when the route's address is fixed, so `*.b.mesh → 10.0.0.5:15006`
//   opened one mTLS connection to the same peer per name called, until the peer's per-identity limit refused more;
// - with the table full (1,024 sets), a set whose first DNS answer was still coming was closed under the request
//   waiting for it, which got 503 "has no address" for a name that resolves; eviction went by creation, not use.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RouteConfig } from '../../src/config/index.js';
import type { PeerSessions } from '../../src/sidecar/outbound/peer-sessions.js';
import { type DnsServer, startDnsServer } from '../helpers/dns-server.js';
import { peerSessionsOf, routeOf } from '../helpers/peer-sessions.js';
import { available, testConfig } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

/** The table's bound on pattern routes' sets (peer-sessions.ts MAX_SETS). */
const MAX_SETS = 1_024;

/** Relays DNS queries to `upstream` (127.0.0.1:port), holding those for names containing `slow` until released. */
async function slowRelay(upstream: string): Promise<{ address: string; release(): void; close(): void }> {
  const upstreamPort = Number(upstream.split(':')[1]);
  const socket: UdpSocket = createSocket('udp4');
  const relays = new Set<UdpSocket>();
  const held: (() => void)[] = [];
  let released = false;
  let closed = false;
  socket.on('message', (query, client) => {
    if (closed) return;
    const relay = createSocket('udp4');
    relays.add(relay);
    relay.once('message', (answer) => {
      if (!closed) socket.send(answer, client.port, client.address);
      relays.delete(relay);
      relay.close();
    });
    const send = () => {
      if (!closed) relay.send(query, upstreamPort, '127.0.0.1');
    };
    if (!released && query.includes(Buffer.from('\x04slow'))) held.push(send);
    else send();
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${socket.address().port}`,
    release: () => {
      released = true;
      for (const send of held.splice(0)) send();
    },
    close: () => {
      closed = true;
      for (const relay of relays) relay.close();
      socket.close();
    },
  };
}

describe.skipIf(!available('dnsmasq'))('pattern routes’ endpoint sets', () => {
  let dns: DnsServer;
  let relay: Awaited<ReturnType<typeof slowRelay>>;
  let sessions: PeerSessions;
  let fixed: RouteConfig;
  let perNamespace: RouteConfig;
  let perHost: RouteConfig;

  beforeAll(async () => {
    const ca = await TestCa.create();
    dns = await startDnsServer({ 'slow.shop.test': ['127.0.0.2'] });
    relay = await slowRelay(dns.address);
    const config = testConfig({
      appPort: 1,
      routes: {
        '*.b.mesh': { address: '127.0.0.3:15006', ids: ['spiffe://example.org/ns/b/sa/b'] },
        '*.ns.mesh': { address: '127.0.0.3:15006', ids: ['spiffe://example.org/ns/{namespace}/sa/*'] },
        '*.shop.test': { address: '{host}:15006', ids: ['spiffe://example.org/ns/shop/sa/*'] },
      },
      dnsServers: [relay.address],
    });
    fixed = routeOf(config, '*.b.mesh');
    perNamespace = routeOf(config, '*.ns.mesh');
    perHost = routeOf(config, '*.shop.test');
    sessions = await peerSessionsOf(ca, config);
  });
  afterAll(async () => {
    relay?.release();
    await sessions?.close(Date.now());
    relay?.close();
    await dns?.close();
  });

  it('fail/a fixed address serves every name of the pattern from one set; ok/{host} and {namespace} keep theirs', () => {
    const one = sessions.setFor(fixed, 'a.b.mesh');
    expect(sessions.setFor(fixed, 'other.b.mesh')).toBe(one);
    // Expected IDs with {namespace}: one set per namespace label (the IDs differ), whatever the service label.
    const shop = sessions.setFor(perNamespace, 'orders.shop.ns.mesh');
    expect(sessions.setFor(perNamespace, 'carts.shop.ns.mesh')).toBe(shop);
    expect(sessions.setFor(perNamespace, 'orders.bank.ns.mesh')).not.toBe(shop);
    expect(sessions.setFor(perHost, 'a.shop.test')).not.toBe(sessions.setFor(perHost, 'b.shop.test'));
  });

  it('fail/a set waiting for its first address is kept when the table is full; the least recently used goes', async () => {
    const waiting = sessions.setFor(perHost, 'slow.shop.test');
    const picked = Promise.resolve(waiting.pick());
    const first = sessions.setFor(perHost, 'h0.shop.test');
    const called: Promise<unknown>[] = [];
    for (let i = 1; i < MAX_SETS + 8; i++) {
      sessions.setFor(perHost, `h${i}.shop.test`);
      // h0 is called again and again (a request picks an endpoint): never the least recently used when the table is
      // full. Its name has no address; the request's refusal is not what this test looks at.
      called.push(Promise.resolve(sessions.setFor(perHost, 'h0.shop.test').pick()).catch(() => undefined));
    }
    relay.release();
    const endpoint = await picked;
    expect(endpoint.address).toBe('127.0.0.2');
    expect(sessions.setFor(perHost, 'slow.shop.test')).toBe(waiting);
    expect(sessions.setFor(perHost, 'h0.shop.test')).toBe(first);
    await Promise.all(called);
  });
});
