import { describe, expect, it } from 'vitest';
import { hostPatternError, normalizeHost } from '../../../src/authz/policy/match-host.js';

describe('hosts', () => {
  it.each([
    ['ok/lower-cased', 'Orders.Shop.SVC', 'orders.shop.svc'],
    ['ok/port-stripped', 'orders.shop.svc:8080', 'orders.shop.svc'],
    ['ok/trailing-dot', 'orders.shop.svc.', 'orders.shop.svc'],
    ['ok/trailing-dot-and-port', 'Orders.shop.svc.:80', 'orders.shop.svc'],
    ['ok/ipv6-port', '[::1]:8080', '[::1]'],
    ['ok/ipv4-port', '127.0.0.1:80', '127.0.0.1'],
  ])('%s', (_name, host, expected) => {
    expect(normalizeHost(host)).toBe(expected);
  });

  it('ok/patterns and fail/patterns', () => {
    expect(hostPatternError('Orders.Shop.svc')).toBeUndefined();
    expect(hostPatternError('orders.shop.svc.')).toBeUndefined();
    expect(hostPatternError('[::1]')).toBeUndefined();
    expect(hostPatternError('orders:8080')).toEqual(expect.any(String));
    expect(hostPatternError('*.shop.svc')).toEqual(expect.any(String));
    expect(hostPatternError('-bad.svc')).toEqual(expect.any(String));
  });

  // Requests spelling an IP address another way are refused (host-validate.ts), so such an entry could never match.
  it.each([
    ['ok/dotted quad', '127.0.0.1'],
    ['ok/canonical IPv6', '[::1]'],
    ['ok/canonical IPv6 in capitals', '[2001:DB8::1]'],
    ['ok/name ending in hex letters', 'cafe.face'],
  ])('%s entry', (_name, entry) => {
    expect(hostPatternError(entry)).toBeUndefined();
  });

  it.each([
    ['fail/two-part IPv4', '127.1', /four decimal numbers/],
    ['fail/decimal IPv4', '2130706433', /four decimal numbers/],
    ['fail/leading zero', '127.0.0.01', /four decimal numbers/],
    ['fail/hex part', '0x7f.0.0.1', /four decimal numbers/],
    ['fail/IPv6 not canonical', '[0::1]', /canonical form: "\[::1\]"/],
    ['fail/IPv4-mapped in dotted form', '[::ffff:127.0.0.1]', /canonical form: "\[::ffff:7f00:1\]"/],
    ['fail/not an IPv6 address', '[1::2::3]', /IPv6/],
  ])('%s entry', (_name, entry, message) => {
    expect(hostPatternError(entry)).toMatch(message);
  });
});
