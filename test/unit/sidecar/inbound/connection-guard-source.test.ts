// Whom the inbound's per-client handshake share counts together. Its clients are pods, which cannot pick their
// addresses, and in an IPv6 cluster the pods of one node often share one /64: counted by /64, they shared one
// quarter of the handshake places under pressure, as clients behind one NAT do. The external listener keeps the /64
// (a host on the internet may use any address of its subnet).
import { describe, expect, it } from 'vitest';
import { sourceKeyOf } from '../../../../src/sidecar/inbound/connection-guard.js';

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
