import { describe, expect, it } from 'vitest';
import {
  expectedIdsFor,
  idIsExpected,
  parseEgressEntry,
  RouteTable,
  routeAddressFor,
  sidecarConfigFromObject,
} from '../../../src/config/index.js';
import { SpiffeId, TrustDomain } from '../../../src/identity/index.js';

const BASE = { trustDomain: 'example.org', ca: { url: 'https://ca:1', bundle: '/b', token: '/t' } };
const TD = TrustDomain.parse('example.org');

function routesOf(routes: Record<string, unknown>) {
  const config = sidecarConfigFromObject({ ...BASE, outbound: { routes } });
  return { config, table: new RouteTable(config.outbound.routes.values()) };
}

describe('route keys and patterns', () => {
  const { table } = routesOf({
    'orders.shop': { address: '10.0.0.1:15006' },
    '*.shop': { address: '{host}:15006', ids: ['spiffe://example.org/ns/shop/sa/*'] },
    '*.*': { address: '{host}:15006', ids: ['spiffe://example.org/ns/{namespace}/sa/*'] },
    '*.*.svc.cluster.local': { address: '{host}:15006', ids: ['spiffe://example.org/ns/{namespace}/sa/*'] },
  });

  it.each([
    ['ok/exact beats pattern', 'orders.shop', 'orders.shop'],
    ['ok/more literal labels win', 'payments.shop', '*.shop'],
    ['ok/one * is one label', 'web.edge', '*.*'],
    ['ok/cluster FQDN', 'web.edge.svc.cluster.local', '*.*.svc.cluster.local'],
    ['fail/* never spans two labels', 'a.b.shop', undefined],
    ['fail/single label', 'orders', undefined],
  ])('%s', (_name, host, key) => {
    expect(table.match(host)?.host).toBe(key);
  });

  it('ok/{host} is filled with the called name; a literal address is kept', () => {
    const pattern = table.match('web.edge');
    expect(pattern && routeAddressFor(pattern, 'web.edge')).toEqual({ host: 'web.edge', port: 15006 });
    const exact = table.match('orders.shop');
    expect(exact && routeAddressFor(exact, 'orders.shop')).toEqual({ host: '10.0.0.1', port: 15006 });
  });

  it('ok/{namespace} comes from the second label and /sa/* matches exactly one segment', () => {
    const route = table.match('web.edge');
    if (route === undefined) throw new Error('no route');
    const expected = expectedIdsFor(route, 'web.edge', TD);
    expect(expected.prefixes).toEqual(['spiffe://example.org/ns/edge/sa/']);
    expect(idIsExpected(expected, SpiffeId.parse('spiffe://example.org/ns/edge/sa/web'))).toBe(true);
    expect(idIsExpected(expected, SpiffeId.parse('spiffe://example.org/ns/shop/sa/web'))).toBe(false);
    expect(idIsExpected(expected, SpiffeId.parse('spiffe://example.org/ns/edge/sa/web/x'))).toBe(false);
    expect(idIsExpected(expected, SpiffeId.parse('spiffe://other.org/ns/edge/sa/web'))).toBe(false);
  });

  it.each([
    ['fail/port in a key', { 'a.shop:80': { address: 'x:1' } }, /route keys/],
    ['fail/partial wildcard label', { 'a*.shop': { address: 'x:1' } }, /route keys/],
    ['fail/template in the middle', { 'a.shop': { address: 'x{host}:1' } }, /host:port/],
    [
      'fail/star in the middle of an id',
      { 'a.shop': { address: 'x:1', ids: ['spiffe://example.org/*/sa/a'] } },
      /pattern/,
    ],
    ['fail/unknown template', { 'a.shop': { address: 'x:1', ids: ['spiffe://example.org/ns/{ns}/sa/*'] } }, /pattern/],
  ])('%s', (_name, routes, message) => {
    expect(() => routesOf(routes)).toThrow(message);
  });
});

// A `*` is one DNS label, never part of an IP literal: before, `Host: [::ffff:0:0]` matched a `*` route and was
// dialled as 0.0.0.0 through `{host}`, and `[a:b.cafe]` matched `*.cafe` (found by a probe of the outbound).
describe('a * is a DNS label, never part of an IP literal', () => {
  const { table } = routesOf({
    '*': { address: '{host}:15006' },
    '*.cafe': { address: '{host}:15006' },
    '*.*': { address: '{host}:15006' },
    '*.*.*.*': { address: '{host}:15006' },
    '10.0.4.12': { address: '10.0.4.12:15006' },
  });

  it.each([
    ['ok/one label', 'orders', '*'],
    ['ok/a label of digits before a name', '127.cafe', '*.cafe'],
    ['ok/hyphen inside a label', 'b-c.cafe', '*.cafe'],
    ['ok/an exact route to an IP address', '10.0.4.12', '10.0.4.12'],
    ['fail/IPv4-mapped IPv6', '::ffff:7f00:1', undefined],
    ['fail/IPv4-mapped unspecified (0.0.0.0)', '::ffff:0:0', undefined],
    ['fail/IPv6 loopback', '::1', undefined],
    ['fail/part of an IPv6 literal', 'a:b.cafe', undefined],
    ['fail/dotted quad', '10.0.4.13', undefined],
    ['fail/two-part IPv4', '127.1', undefined],
    ['fail/hex last label', '127.0.0.0x1', undefined],
    ['fail/one decimal number', '2130706433', undefined],
    ['fail/label ending in a hyphen', 'b-.cafe', undefined],
    ['fail/label starting with a hyphen', '-b.cafe', undefined],
    ['fail/underscore', 'b_c.cafe', undefined],
  ])('%s', (_name, host, key) => {
    expect(table.match(host)?.host).toBe(key);
  });

  it('ok/the exact IP route keeps its literal address', () => {
    const route = table.match('10.0.4.12');
    expect(route && routeAddressFor(route, '10.0.4.12')).toEqual({ host: '10.0.4.12', port: 15006 });
  });
});

describe('egress entries', () => {
  it.each([
    ['ok/host gets 443', 'api.example.com', { host: 'api.example.com', port: 443 }],
    ['ok/explicit port', 'api.example.com:8443', { host: 'api.example.com', port: 8443 }],
    ['ok/wildcard with port', '*.example.com:443', { host: '*.example.com', port: 443 }],
    ['fail/localhost', 'localhost', undefined],
    ['fail/loopback IP', '127.0.0.1:80', undefined],
    ['fail/*.localhost', 'app.localhost', undefined],
    ['fail/port 0', 'api.example.com:0', undefined],
  ])('%s', (_name, text, expected) => {
    expect(parseEgressEntry(text)).toEqual(expected);
  });
});
