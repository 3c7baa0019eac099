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
});
