// Strict reading of what an app's request names: one Host, no userinfo, no repeated single-value headers; and the
// egress allow-list with ports and no loopback.
import { describe, expect, it } from 'vitest';
import { isMeshauthError } from '../../../../src/errors/index.js';
import { egressMatcher } from '../../../../src/sidecar/outbound/egress-matcher.js';
import { hostOfAuthority, readRequestTarget } from '../../../../src/sidecar/outbound/request-target.js';

describe('readRequestTarget', () => {
  it.each([
    [
      'ok/origin form',
      '/x?y=1',
      ['Host', 'Orders.Shop:8080'],
      { host: 'orders.shop', path: '/x?y=1', proxyForm: false },
    ],
    [
      'ok/proxy form',
      'http://orders.shop/a',
      ['Host', 'orders.shop'],
      { host: 'orders.shop', path: '/a', proxyForm: true },
    ],
    [
      'ok/proxy form without a path',
      'http://orders.shop:80',
      ['Host', 'orders.shop'],
      { host: 'orders.shop', path: '/', proxyForm: true },
    ],
    ['ok/trailing dot', '/', ['host', 'orders.shop.'], { host: 'orders.shop', path: '/', proxyForm: false }],
    ['ok/IPv6 literal', 'http://[::1]:8080/', ['Host', '[::1]:8080'], { host: '::1', path: '/', proxyForm: true }],
    ['ok/hyphen inside a label', '/', ['Host', 'b-c.shop'], { host: 'b-c.shop', path: '/', proxyForm: false }],
  ])('%s', (_name, url, raw, expected) => {
    const target = readRequestTarget(url, raw);
    expect(isMeshauthError(target)).toBe(false);
    expect(target).toMatchObject(expected);
  });

  it.each([
    ['fail/two Host headers', '/', ['Host', 'a.shop', 'host', 'b.shop'], 'duplicate_host'],
    [
      'fail/two user-agent lines',
      '/',
      ['Host', 'a.shop', 'User-Agent', 'good', 'user-agent', 'evil'],
      'duplicate_header',
    ],
    ['fail/two content-type lines', '/', ['Host', 'a', 'Content-Type', 'x', 'Content-Type', 'y'], 'duplicate_header'],
    ['fail/userinfo in Host', '/', ['Host', 'b.demo:@internal.b.demo'], 'bad_host'],
    ['fail/userinfo in the URL', 'http://b.demo:@internal.b.demo/', [], 'bad_host'],
    ['fail/user@ in the URL', 'http://user@b.demo/', [], 'bad_host'],
    ['fail/empty host', 'http:///x', [], 'bad_host'],
    ['fail/port out of range', '/', ['Host', 'a.shop:70000'], 'bad_host'],
    ['fail/port 0', '/', ['Host', 'b.mesh:0'], 'bad_host'],
    ['fail/label ending in a hyphen', '/', ['Host', 'b-.shop'], 'bad_host'],
    ['fail/label ending in a hyphen in the URL', 'http://a.b-/', ['Host', 'a.b-'], 'bad_host'],
    ['fail/no Host', '/', [], 'missing_host'],
    ['fail/https target', 'https://a.shop/', [], 'target_form'],
    ['fail/asterisk form', '*', ['Host', 'a.shop'], 'target_form'],
  ])('%s', (_name, url, raw, reason) => {
    const target = readRequestTarget(url, raw);
    expect(isMeshauthError(target) && target.code).toBe('MESHAUTH_ERR_BAD_REQUEST');
    expect(isMeshauthError(target) && target.reason).toBe(reason);
  });

  it('fail/HTTP/1.1 in proxy form without Host (RFC 9112 §3.2); ok/HTTP/1.0, which need not send it', () => {
    const http11 = readRequestTarget('http://orders.shop/a', []);
    expect(isMeshauthError(http11) && http11.reason).toBe('missing_host');
    expect(readRequestTarget('http://orders.shop/a', [], false)).toMatchObject({
      host: 'orders.shop',
      proxyForm: true,
    });
  });

  it('ok/repeated list headers are fine', () => {
    expect(isMeshauthError(readRequestTarget('/', ['Host', 'a', 'Accept', 'x', 'Accept', 'y']))).toBe(false);
  });

  it.each([
    ['a.shop', 'a.shop'],
    ['A.Shop:1', 'a.shop'],
    ['a..shop', undefined],
    ['-a.shop', undefined],
    ['a shop', undefined],
    ['[::1', undefined],
    ['[::1]x', undefined],
    ['a.shop:', undefined],
  ])('hostOfAuthority(%s)', (authority, expected) => {
    expect(hostOfAuthority(authority)).toBe(expected);
  });
});

describe('egressMatcher with ports', () => {
  const allowed = egressMatcher([
    { host: 'api.example.com', port: 443 },
    { host: '*.googleapis.com', port: 443 },
    { host: 'db.example.com', port: 5432 },
  ]);
  it.each([
    ['ok/exact host, default port', 'api.example.com', 443, true],
    ['fail/exact host, another port', 'api.example.com', 22, false],
    ['ok/wildcard', 'storage.googleapis.com', 443, true],
    ['fail/wildcard, another port', 'storage.googleapis.com', 80, false],
    ['ok/listed port', 'db.example.com', 5432, true],
    ['fail/listed host, default port not listed', 'db.example.com', 443, false],
  ])('%s', (_name, host, port, expected) => {
    expect(allowed(host, port)).toBe(expected);
  });
  it('fail/loopback is never an egress target, even when listed', () => {
    const listed = egressMatcher(['localhost:8080', '127.0.0.1:8080', { host: '127.0.0.1', port: 8080 }]);
    for (const host of ['localhost', '127.0.0.1', '::1', 'a.localhost', '0.0.0.0', '::ffff:127.0.0.1']) {
      expect(listed(host, 8080)).toBe(false);
    }
  });
});
