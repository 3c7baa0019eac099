import { describe, expect, it } from 'vitest';
import { endUserFromClaims } from '../../../src/authn/end-user.js';
import { claimAt, claimsMatch } from '../../../src/authz/policy/match-claims.js';
import { cookieHeaderWithout, parseCookies } from '../../../src/gateway/cookies.js';
import { checkClaimSize } from '../../../src/gateway/edge-rule.js';
import { isApiRequest, isCrossSite, isCrossSiteNavigation } from '../../../src/gateway/request-kind.js';
import { safeReturnPath } from '../../../src/gateway/return-url.js';
import { prefixMatches } from '../../../src/gateway/route-table.js';

describe('return URLs', () => {
  for (const [input, expected] of [
    ['/shop?x=1', '/shop?x=1'],
    ['/a/b#frag', '/a/b'],
    ['//evil.example/x', '/'],
    ['/\\evil.example', '/'],
    ['/\t/evil.example', '/'],
    ['https://evil.example/', '/'],
    ['javascript:alert(1)', '/'],
    ['', '/'],
    [undefined, '/'],
  ] as const) {
    it(`${expected === '/' ? 'fail' : 'ok'}/${JSON.stringify(input)}`, () => {
      expect(safeReturnPath(input)).toBe(expected);
    });
  }
});

describe('request kind', () => {
  it('ok/navigation vs API', () => {
    expect(isApiRequest('GET', { 'sec-fetch-mode': 'navigate', accept: 'text/html' })).toBe(false);
    expect(isApiRequest('GET', { accept: 'text/html,*/*' })).toBe(false);
    expect(isApiRequest('GET', {})).toBe(false);
    expect(isApiRequest('GET', { accept: 'application/json' })).toBe(true);
    expect(isApiRequest('GET', { 'sec-fetch-mode': 'cors' })).toBe(true);
    expect(isApiRequest('GET', { 'x-requested-with': 'XMLHttpRequest' })).toBe(true);
    expect(isApiRequest('GET', { authorization: 'Bearer x' })).toBe(true);
    expect(isApiRequest('POST', { 'sec-fetch-mode': 'navigate' })).toBe(true);
  });

  it('fail/cross-site state changes; ok/same-origin and safe methods', () => {
    const origin = 'https://shop.example.com';
    expect(isCrossSite('POST', { 'sec-fetch-site': 'cross-site' }, origin)).toBe(true);
    expect(isCrossSite('POST', { 'sec-fetch-site': 'same-site' }, origin)).toBe(true);
    expect(isCrossSite('DELETE', { origin: 'https://evil.example' }, origin)).toBe(true);
    expect(isCrossSite('POST', {}, origin)).toBe(true);
    expect(isCrossSite('POST', { 'sec-fetch-site': 'same-origin' }, origin)).toBe(false);
    expect(isCrossSite('PUT', { origin }, origin)).toBe(false);
    expect(isCrossSite('GET', { 'sec-fetch-site': 'cross-site' }, origin)).toBe(false);
  });

  it('fail/a request another site started, whatever its method (GET logout); ok/same origin, typed, no header', () => {
    expect(isCrossSiteNavigation({ 'sec-fetch-site': 'cross-site' })).toBe(true);
    expect(isCrossSiteNavigation({ 'sec-fetch-site': 'same-site' })).toBe(true);
    expect(isCrossSiteNavigation({ 'sec-fetch-site': 'same-origin' })).toBe(false);
    expect(isCrossSiteNavigation({ 'sec-fetch-site': 'none' })).toBe(false);
    expect(isCrossSiteNavigation({})).toBe(false);
  });
});

describe('cookies and prefixes', () => {
  it('ok/first occurrence wins; our cookies are removed from what is forwarded', () => {
    expect(parseCookies('a=1; b=2; a=3').get('a')).toBe('1');
    expect(cookieHeaderWithout('x=1; __Host-m=s; y=2', (n) => n.startsWith('__Host-m'))).toBe('x=1; y=2');
    expect(cookieHeaderWithout('__Host-m=s', (n) => n === '__Host-m')).toBeUndefined();
  });

  it('ok/path prefixes on segment boundaries', () => {
    expect(prefixMatches('/api', '/api')).toBe(true);
    expect(prefixMatches('/api', '/api/x')).toBe(true);
    expect(prefixMatches('/api', '/apix')).toBe(false);
    expect(prefixMatches('/api/', '/api/x')).toBe(true);
    expect(prefixMatches('/', '/anything')).toBe(true);
  });
});

describe('claims by dotted path', () => {
  const claims = {
    tenant: 'acme',
    realm_access: { roles: ['admin', 'user'] },
    scope: 'a b',
    level: 3,
    email: 'x@acme.com',
  };
  for (const [name, conditions, expected] of [
    ['ok/equals', { tenant: { equals: 'acme' } }, true],
    ['fail/equals', { tenant: { equals: 'other' } }, false],
    ['ok/in', { tenant: { in: ['x', 'acme'] } }, true],
    ['ok/includes nested array', { 'realm_access.roles': { includes: 'admin' } }, true],
    ['fail/includes all listed', { 'realm_access.roles': { includes: ['admin', 'root'] } }, false],
    ['ok/includes space-separated', { scope: { includes: 'b' } }, true],
    ['ok/prefix', { email: { prefix: 'x@' } }, true],
    ['ok/number equals', { level: { equals: 3 } }, true],
    ['fail/missing claim', { missing: { equals: 'x' } }, false],
    ['fail/prototype path', { 'tenant.length': { equals: 4 } }, false],
    ['fail/two operators must both hold', { tenant: { equals: 'acme', prefix: 'z' } }, false],
  ] as const) {
    it(name, () => {
      expect(claimsMatch(conditions as never, claims)).toBe(expected);
    });
  }
  it('fail/no own property lookups through the prototype', () => {
    expect(claimAt({}, 'constructor')).toBeUndefined();
    expect(claimAt({ a: {} }, 'a.toString')).toBeUndefined();
  });
});

describe('claims carried in the passport are bounded', () => {
  const user = (extra: Record<string, unknown>) =>
    endUserFromClaims({ sub: 'alice', iss: 'https://idp', exp: 1, ...extra }, ['blob']) as NonNullable<
      ReturnType<typeof endUserFromClaims>
    >;
  it('ok/within limits.maxClaimBytes', () => {
    expect(() => checkClaimSize(user({ blob: 'x'.repeat(100) }), 4096, 'MESHAUTH_ERR_LOGIN_FAILED')).not.toThrow();
  });
  it('fail/past limits.maxClaimBytes: refused, never truncated', () => {
    expect(() => checkClaimSize(user({ blob: 'x'.repeat(5000) }), 4096, 'MESHAUTH_ERR_LOGIN_FAILED')).toThrow(
      expect.objectContaining({ code: 'MESHAUTH_ERR_LOGIN_FAILED', reason: 'claims_too_large' }),
    );
  });
});
