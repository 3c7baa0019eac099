// Whom the inbound's per-client handshake share counts together. Its clients are pods, which cannot pick their
// addresses, and in an IPv6 cluster the pods of one node often share one /64: counted by /64, they shared one
// quarter of the handshake places under pressure, as clients behind one NAT do. The external listener keeps the /64
// (a host on the internet may use any address of its subnet).
import { EventEmitter } from 'node:events';
import type { TLSSocket } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { ConnectionGuard, sourceKeyOf } from '../../../../src/sidecar/inbound/connection-guard.js';
import { DEFAULT_INBOUND_LIMITS } from '../../../../src/sidecar/inbound/limits.js';
import { Metrics, silentLogger } from '../../../../src/telemetry/index.js';

describe('sourceKeyOf', () => {
  it('ok/inbound: two pods of one /64 are two clients', () => {
    expect(sourceKeyOf('inbound', '2001:db8:0:1::a')).not.toBe(sourceKeyOf('inbound', '2001:db8:0:1::b'));
  });

  it('ok/external: two addresses of one /64 are one client', () => {
    expect(sourceKeyOf('external', '2001:db8:0:1::a')).toBe(sourceKeyOf('external', '2001:db8:0:1::b'));
  });

  it.each(['inbound', 'external'] as const)('ok/%s: an IPv4-mapped client is its IPv4 address', (direction) => {
    expect(sourceKeyOf(direction, '::ffff:10.0.0.5')).toBe('10.0.0.5');
    expect(sourceKeyOf(direction, '10.0.0.5')).toBe('10.0.0.5');
  });

  it('ok/no address is one key', () => {
    expect(sourceKeyOf('inbound', undefined)).toBe('');
    expect(sourceKeyOf('external', undefined)).toBe('');
  });
});

// Found in review: established connections were counted by /64 and open ones by address, so on the inbound an IPv6
// pod's established connections counted as handshakes under way, and a busy pod was refused while half the handshake
// places were taken by others. Driven with stand-in sockets (the guard reads remoteAddress, destroy and once).
describe('the handshake share of a client with established connections', () => {
  class StandInSocket extends EventEmitter {
    destroyed = false;
    constructor(readonly remoteAddress: string) {
      super();
    }
    destroy(): void {
      this.destroyed = true;
    }
  }

  function nextConnectionAccepted(address: string): boolean {
    const guard = new ConnectionGuard({
      direction: 'inbound',
      limits: { ...DEFAULT_INBOUND_LIMITS, maxHandshakes: 8 }, // half: 4; a client's share: 2
      metrics: new Metrics(),
      logger: silentLogger(),
      handOver: () => undefined,
    });
    try {
      for (let i = 0; i < 2; i++) {
        const established = new StandInSocket(address);
        guard.server.emit('connection', established);
        guard.established(established as unknown as TLSSocket, 'spiffe://example.org/ns/shop/sa/busy');
      }
      for (let i = 1; i <= 4; i++) guard.server.emit('connection', new StandInSocket(`10.9.9.${i}`));
      const next = new StandInSocket(address);
      guard.server.emit('connection', next);
      return !next.destroyed;
    } finally {
      guard.close();
    }
  }

  it.each(['10.0.0.2', 'fd00::b', '::ffff:10.0.0.2'])('ok/%s: accepted, it has no handshake under way', (address) => {
    expect(nextConnectionAccepted(address)).toBe(true);
  });
});
