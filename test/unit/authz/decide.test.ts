// Precedence and every matcher through decide(); explain() must always agree with decide().
import { describe, expect, it } from 'vitest';
import { decide } from '../../../src/authz/decide.js';
import { explain } from '../../../src/authz/decide-explain.js';
import { FRONTEND, GATEWAY, ORDERS, OTHER_TD, policyOf, request } from './authz-fixtures.js';

const allowAll = { name: 'allow-all', action: 'allow' };

describe('decide: precedence', () => {
  it('fail/empty policy denies everything with default-deny', () => {
    const d = decide(policyOf([]), request());
    expect(d).toMatchObject({ decision: 'deny', rule: 'default-deny', mode: 'enforce', enforced: true });
    expect(d.reasons[0]).toContain('no rules');
  });

  it('fail/no matching rule → default deny', () => {
    const policy = policyOf([{ name: 'only-orders', action: 'allow', to: { paths: ['/orders/*'] } }]);
    expect(decide(policy, request({ path: '/admin' })).rule).toBe('default-deny');
  });

  it('ok/a matching allow allows', () => {
    const policy = policyOf([{ name: 'orders', action: 'allow', to: { paths: ['/orders/*'] } }]);
    expect(decide(policy, request({ path: '/orders/1' }))).toMatchObject({ decision: 'allow', rule: 'orders' });
  });

  it('fail/any matching deny wins over an allow, whatever the order', () => {
    const deny = { name: 'no-admin', action: 'deny', to: { paths: ['/admin', '/admin/*'] } };
    for (const rules of [
      [allowAll, deny],
      [deny, allowAll],
    ]) {
      const policy = policyOf(rules);
      expect(decide(policy, request({ path: '/admin/x' }))).toMatchObject({ decision: 'deny', rule: 'no-admin' });
      expect(decide(policy, request({ path: '/public' }))).toMatchObject({ decision: 'allow', rule: 'allow-all' });
    }
  });

  it('ok/the first matching rule in file order is reported among equals', () => {
    const policy = policyOf([
      { name: 'a', action: 'allow', to: { paths: ['/x'] } },
      { name: 'b', action: 'allow' },
      { name: 'd1', action: 'deny', to: { paths: ['/y'] } },
      { name: 'd2', action: 'deny', to: { paths: ['/y'] } },
    ]);
    expect(decide(policy, request({ path: '/x' })).rule).toBe('a');
    expect(decide(policy, request({ path: '/y' })).rule).toBe('d1');
  });

  it('ok/audit mode reports the decision but does not enforce it', () => {
    const policy = policyOf([{ name: 'no-admin', action: 'deny', to: { paths: ['/admin'] } }], { mode: 'audit' });
    expect(decide(policy, request({ path: '/admin' }))).toMatchObject({
      decision: 'deny',
      rule: 'no-admin',
      mode: 'audit',
      enforced: false,
    });
    expect(decide(policy, request({ path: '/x' }))).toMatchObject({ rule: 'default-deny', enforced: false });
  });

  it('ok/exposeRuleNames defaults to false', () => {
    expect(policyOf([]).exposeRuleNames).toBe(false);
    expect(policyOf([], { exposeRuleNames: true }).exposeRuleNames).toBe(true);
  });
});

describe('decide: from', () => {
  it.each([
    ['ok/ids-exact', { ids: [FRONTEND] }, FRONTEND, true],
    ['fail/ids-exact', { ids: [FRONTEND] }, ORDERS, false],
    ['ok/ids-prefix', { ids: ['spiffe://example.org/ns/shop/*'] }, ORDERS, true],
    ['fail/ids-prefix-sibling', { ids: ['spiffe://example.org/ns/sh/*'] }, ORDERS, false],
    ['ok/namespaces', { namespaces: ['shop'] }, FRONTEND, true],
    ['fail/namespaces', { namespaces: ['edge'] }, FRONTEND, false],
    ['fail/namespaces-non-k8s-id', { namespaces: ['shop'] }, 'spiffe://example.org/shop/frontend', false],
    ['ok/trustDomains', { trustDomains: ['example.org'] }, FRONTEND, true],
    ['fail/trustDomains', { trustDomains: ['example.org'] }, OTHER_TD, false],
    ['fail/notIds', { notIds: [FRONTEND] }, FRONTEND, false],
    ['ok/notIds-other', { notIds: [FRONTEND] }, ORDERS, true],
    ['fail/notIds-prefix', { notIds: ['spiffe://example.org/ns/shop/*'] }, ORDERS, false],
    ['ok/fields-are-AND', { namespaces: ['shop'], trustDomains: ['example.org'] }, FRONTEND, true],
    ['fail/fields-are-AND', { namespaces: ['shop'], trustDomains: ['example.org'] }, OTHER_TD, false],
    ['fail/ids-and-notIds', { ids: ['spiffe://example.org/ns/shop/*'], notIds: [ORDERS] }, ORDERS, false],
  ])('%s', (_name, from, peer, allowed) => {
    const policy = policyOf([{ name: 'r', action: 'allow', from }]);
    expect(decide(policy, request({ peer })).decision).toBe(allowed ? 'allow' : 'deny');
  });
});

describe('decide: to', () => {
  const policy = policyOf([
    {
      name: 'r',
      action: 'allow',
      to: { methods: ['GET', 'HEAD'], paths: ['/orders/*'], hosts: ['Orders.Shop.svc'], ports: [8080] },
    },
  ]);
  it.each([
    ['ok/all-match', {}, true],
    ['ok/host-case-and-port', { host: 'ORDERS.shop.svc.:8080' }, true],
    ['fail/method', { method: 'POST' }, false],
    ['fail/method-not-in-any-rule', { method: 'PURGE' }, false],
    ['fail/path', { path: '/orders' }, false],
    ['fail/host', { host: 'payments.shop.svc' }, false],
    ['fail/port', { port: 9090 }, false],
  ])('%s', (_name, overrides, allowed) => {
    const d = decide(policy, request({ path: '/orders/1', ...overrides }));
    expect(d.decision).toBe(allowed ? 'allow' : 'deny');
  });
});

describe('decide: escaped delimiters in paths', () => {
  // Go's ServeMux, Spring, Flask and gRPC transcoding decode `%3A` before routing: the app runs /v1/items:purge.
  const policy = policyOf([
    { name: 'no-purge', action: 'deny', to: { paths: ['/v1/items:purge', '/users/@me/*', "/a!$&'()+,=b", '/c%3Ad'] } },
    { name: 'rest', action: 'allow', to: { paths: ['/*', '/v1/items:get'] } },
  ]);
  it.each([
    ['fail/deny-catches-escaped-colon', '/v1/items%3Apurge', 'no-purge'],
    ['fail/deny-catches-escaped-at', '/users/%40me/x', 'no-purge'],
    ['fail/deny-catches-escaped-sub-delims', '/a%21%24%26%27%28%29%2B%2C%3Db', 'no-purge'],
    ['fail/deny-written-escaped-catches-raw', '/c:d', 'no-purge'],
    ['fail/deny-written-raw-still-catches-raw', '/v1/items:purge', 'no-purge'],
    ['ok/escaped-percent-is-not-decoded-twice', '/v1/items%253Apurge', 'rest'],
    ['ok/escaped-semicolon-stays-a-segment-char', '/v1/items%3Bpurge', 'rest'],
    ['ok/allow-matches-the-normalized-path-as-is', '/v1/items:get', 'rest'],
  ])('%s: %s', (_name, path, rule) => {
    const d = decide(policy, request({ path }));
    expect(d.rule).toBe(rule);
    expect(explain(policy, request({ path })).rule).toBe(rule);
  });

  it('fail/a deny on the literal file `*` (written %2A) catches a raw `*` and never turns into the prefix wildcard', () => {
    const star = policyOf([
      { name: 'no-star-file', action: 'deny', to: { paths: ['/files/%2A'] } },
      { name: 'rest', action: 'allow', to: { paths: ['/*'] } },
    ]);
    expect(decide(star, request({ path: '/files/%2A' })).rule).toBe('no-star-file');
    expect(decide(star, request({ path: '/files/*' })).rule).toBe('no-star-file');
    expect(decide(star, request({ path: '/files/x' })).rule).toBe('rest');
  });

  it('fail/raw braces reach a deny written with their escapes; {param} segments keep working', () => {
    const braces = policyOf([
      { name: 'no-brace-file', action: 'deny', to: { paths: ['/files/%7Bx%7D', '/users/{id}/@admin'] } },
      { name: 'rest', action: 'allow', to: { paths: ['/*'] } },
    ]);
    expect(decide(braces, request({ path: '/files/{x}' })).rule).toBe('no-brace-file');
    expect(decide(braces, request({ path: '/users/42/%40admin' })).rule).toBe('no-brace-file');
    expect(decide(braces, request({ path: '/users/42/admin' })).rule).toBe('rest');
  });

  it('fail/an allow written with a delimiter does not match its escaped spelling (only ever stricter)', () => {
    const only = policyOf([{ name: 'get', action: 'allow', to: { paths: ['/v1/items:get'] } }]);
    expect(decide(only, request({ path: '/v1/items%3Aget' })).rule).toBe('default-deny');
  });
});

describe('decide: a deny also reads the path cut at an escaped "?" or "#"', () => {
  // `new URL(decodeURIComponent(req.url), base)` or `decodeURIComponent(url).split('?')[0]` routes `/admin%3Fx` to
  // /admin. Such paths stay valid (`/tags/%23rust`), so only denies read the cut: an allow never does.
  const policy = policyOf([
    { name: 'no-admin', action: 'deny', to: { paths: ['/admin', '/admin/*', '/users/@me', '/v1/items:purge'] } },
    { name: 'rest', action: 'allow', to: { paths: ['/*'] } },
  ]);
  it.each([
    ['fail/escaped-question-mark', '/admin%3F', 'no-admin'],
    ['fail/escaped-question-mark-then-a-path', '/admin%3Fanything/goes', 'no-admin'],
    ['fail/escaped-hash', '/admin%23', 'no-admin'],
    ['fail/escaped-hash-then-more', '/admin%23x', 'no-admin'],
    ['fail/prefix-rule-cut-inside-the-tree', '/admin/users%3Fx', 'no-admin'],
    ['fail/escaped-at-and-cut', '/users/%40me%3F', 'no-admin'],
    ['fail/colon-and-cut', '/v1/items:purge%3F', 'no-admin'],
    ['fail/escaped-space-before-the-cut', '/admin%20%3F', 'no-admin'],
    ['ok/legit-escaped-hash', '/tags/%23rust', 'rest'],
    ['ok/cut-elsewhere', '/administrator%3F', 'rest'],
    ['ok/escaped-percent-is-no-cut', '/admin%253F', 'rest'],
  ])('%s: %s', (_name, path, rule) => {
    expect(decide(policy, request({ path })).rule).toBe(rule);
    expect(explain(policy, request({ path })).rule).toBe(rule);
  });

  it('ok/an allow does not read the cut: an escape only ever makes a request stricter', () => {
    const only = policyOf([{ name: 'admin', action: 'allow', to: { paths: ['/admin'] } }]);
    expect(decide(only, request({ path: '/admin%3Fx' })).rule).toBe('default-deny');
    expect(decide(only, request({ path: '/admin' })).rule).toBe('admin');
  });

  it('ok/one decision reads the cut of its own path only (the context is reset per request)', () => {
    expect(decide(policy, request({ path: '/admin%3F' })).rule).toBe('no-admin');
    expect(decide(policy, request({ path: '/other%3F' })).rule).toBe('rest');
    expect(decide(policy, request({ path: '/admin%23' })).rule).toBe('no-admin');
  });
});

describe('decide: when', () => {
  it('fail/a rule with when.user never matches without an end user', () => {
    const policy = policyOf([{ name: 'r', action: 'allow', when: { user: {} } }]);
    expect(decide(policy, request()).decision).toBe('deny');
    expect(decide(policy, request({ user: { sub: 'alice' } })).decision).toBe('allow');
  });

  it('ok/user claims combine AND across fields', () => {
    const policy = policyOf([
      { name: 'r', action: 'allow', when: { user: { iss: ['https://idp'], scope: ['orders:read'] } } },
    ]);
    expect(decide(policy, request({ user: { iss: 'https://idp', scope: 'openid orders:read' } })).decision).toBe(
      'allow',
    );
    expect(decide(policy, request({ user: { iss: 'https://evil', scope: 'orders:read' } })).decision).toBe('deny');
  });

  it('fail/I09: allow with a header needs every value listed; deny with a header triggers on any value', () => {
    const policy = policyOf([
      { name: 'users', action: 'allow', when: { headers: { 'X-Role': ['user'] } } },
      { name: 'no-debug', action: 'deny', when: { headers: { 'x-debug': ['1'] } } },
    ]);
    const h = (entries: Record<string, string[]>) => new Map(Object.entries(entries));
    expect(decide(policy, request({ headers: h({ 'x-role': ['user'] }) })).rule).toBe('users');
    expect(decide(policy, request({ headers: h({ 'x-role': ['user', 'admin'] }) })).rule).toBe('default-deny');
    expect(decide(policy, request({ headers: h({ 'x-role': ['user,admin'] }) })).rule).toBe('default-deny');
    expect(decide(policy, request({ headers: h({ 'x-role': ['user'], 'x-debug': ['0, 1'] }) })).rule).toBe('no-debug');
    expect(decide(policy, request({ headers: h({ 'x-role': ['user'], 'x-debug': ['0'] }) })).rule).toBe('users');
  });

  it('ok/sourceIps', () => {
    const policy = policyOf([{ name: 'r', action: 'allow', when: { sourceIps: ['10.0.0.0/8', 'fd00::/8'] } }]);
    expect(decide(policy, request({ sourceIp: '10.9.9.9' })).decision).toBe('allow');
    expect(decide(policy, request({ sourceIp: '::ffff:10.9.9.9' })).decision).toBe('allow');
    expect(decide(policy, request({ sourceIp: 'fd00::5' })).decision).toBe('allow');
    expect(decide(policy, request({ sourceIp: '192.168.0.1' })).decision).toBe('deny');
    expect(decide(policy, request({ sourceIp: 'garbage' })).decision).toBe('deny');
  });

  it('ok/time uses the request time only', () => {
    const policy = policyOf([
      {
        name: 'office',
        action: 'allow',
        when: {
          time: { days: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'], from: '09:00', to: '17:00', timeZone: 'Europe/Berlin' },
        },
      },
    ]);
    expect(decide(policy, request({ now: new Date('2026-03-04T10:00:00Z') })).decision).toBe('allow');
    expect(decide(policy, request({ now: new Date('2026-03-04T17:00:00Z') })).decision).toBe('deny');
    expect(decide(policy, request({ now: new Date('2026-03-07T10:00:00Z') })).decision).toBe('deny');
  });

  it('ok/chain includes and startsWith consider the chain, then the peer', () => {
    const policy = policyOf([
      { name: 'via-gateway', action: 'allow', to: { paths: ['/a'] }, when: { chain: { includes: [GATEWAY] } } },
      { name: 'from-gateway', action: 'allow', to: { paths: ['/b'] }, when: { chain: { startsWith: GATEWAY } } },
    ]);
    expect(decide(policy, request({ path: '/a', chain: [GATEWAY] })).rule).toBe('via-gateway');
    expect(decide(policy, request({ path: '/a', peer: GATEWAY })).rule).toBe('via-gateway');
    expect(decide(policy, request({ path: '/a', chain: [ORDERS] })).rule).toBe('default-deny');
    expect(decide(policy, request({ path: '/a' })).rule).toBe('default-deny');
    expect(decide(policy, request({ path: '/b', chain: [GATEWAY, ORDERS] })).rule).toBe('from-gateway');
    expect(decide(policy, request({ path: '/b', chain: [ORDERS, GATEWAY] })).rule).toBe('default-deny');
    expect(decide(policy, request({ path: '/b', peer: GATEWAY, chain: [] })).rule).toBe('from-gateway');
  });
});

describe('decide: index and cache', () => {
  it('ok/repeated decisions for the same peer and method stay correct across peers and methods', () => {
    const policy = policyOf([
      { name: 'fe-get', action: 'allow', from: { ids: [FRONTEND] }, to: { methods: ['GET'] } },
      { name: 'shop-post', action: 'allow', from: { namespaces: ['shop'] }, to: { methods: ['POST'] } },
      { name: 'td-deny-delete', action: 'deny', from: { trustDomains: ['example.org'] }, to: { methods: ['DELETE'] } },
      { name: 'any-options', action: 'allow', to: { methods: ['OPTIONS'] } },
    ]);
    for (let round = 0; round < 3; round++) {
      expect(decide(policy, request({ method: 'GET' })).rule).toBe('fe-get');
      expect(decide(policy, request({ method: 'GET', peer: ORDERS })).rule).toBe('default-deny');
      expect(decide(policy, request({ method: 'POST', peer: ORDERS })).rule).toBe('shop-post');
      expect(decide(policy, request({ method: 'DELETE', peer: ORDERS })).rule).toBe('td-deny-delete');
      expect(decide(policy, request({ method: 'OPTIONS', peer: OTHER_TD })).rule).toBe('any-options');
      expect(decide(policy, request({ method: 'PATCH', peer: OTHER_TD })).rule).toBe('default-deny');
    }
  });

  it('ok/explain() agrees with decide() on a grid of requests', () => {
    const policy = policyOf([
      { name: 'fe', action: 'allow', from: { ids: ['spiffe://example.org/ns/shop/*'] }, to: { paths: ['/orders/*'] } },
      { name: 'gw', action: 'allow', from: { ids: [GATEWAY] }, to: { methods: ['GET', 'POST'] } },
      { name: 'admin', action: 'deny', to: { paths: ['/admin', '/admin/*'] } },
      { name: 'post-users', action: 'allow', to: { methods: ['POST'], paths: ['/users/{id}'] }, when: { user: {} } },
      { name: 'other-td', action: 'deny', from: { trustDomains: ['other.org'] } },
    ]);
    let checked = 0;
    for (const peer of [FRONTEND, ORDERS, GATEWAY, OTHER_TD]) {
      for (const method of ['GET', 'POST', 'DELETE']) {
        for (const path of ['/orders/1', '/orders', '/admin', '/admin/x', '/users/7', '/']) {
          for (const user of [undefined, { sub: 'alice' }]) {
            const r = request({ peer, method, path, user });
            const d = decide(policy, r);
            const e = explain(policy, r);
            expect([e.decision, e.rule]).toEqual([d.decision, d.rule]);
            checked++;
          }
        }
      }
    }
    expect(checked).toBe(144);
  });
});

describe('explain', () => {
  it('ok/names every rule and why it did not match', () => {
    const policy = policyOf([
      {
        name: 'orders-read',
        action: 'allow',
        from: { ids: [FRONTEND] },
        to: { methods: ['GET'], paths: ['/orders/*'] },
      },
      { name: 'no-admin', action: 'deny', to: { paths: ['/admin/*'] } },
    ]);
    const e = explain(policy, request({ peer: ORDERS, method: 'POST', path: '/orders/1' }));
    expect(e.rule).toBe('default-deny');
    expect(e.trace[0]).toMatchObject({ rule: 'orders-read', matched: false });
    expect(e.trace[0]?.misses.map((m) => m.field)).toEqual(['from.ids', 'to.methods']);
    expect(e.trace[0]?.misses[0]?.actual).toBe(ORDERS);
    expect(e.trace[1]?.misses).toEqual([{ field: 'to.paths', expected: 'one of ["/admin/*"]', actual: '/orders/1' }]);
  });
});

describe('decide: what a rule covers beyond its literal text', () => {
  it('ok/a rule listing GET also covers HEAD (the app runs its GET handler for it); HEAD alone covers only HEAD', () => {
    const policy = policyOf([
      { name: 'no-admin-reads', action: 'deny', to: { methods: ['GET'], paths: ['/admin/*'] } },
      { name: 'head-only', action: 'allow', to: { methods: ['HEAD'], paths: ['/probe'] } },
      { name: 'rest', action: 'allow' },
    ]);
    expect(decide(policy, request({ method: 'HEAD', path: '/admin/users' })).rule).toBe('no-admin-reads');
    expect(decide(policy, request({ method: 'GET', path: '/admin/users' })).rule).toBe('no-admin-reads');
    expect(decide(policy, request({ method: 'POST', path: '/admin/users' })).rule).toBe('rest');
    expect(decide(policy, request({ method: 'HEAD', path: '/probe' })).rule).toBe('head-only');
    const getOnly = policyOf([{ name: 'get', action: 'allow', to: { methods: ['GET'] } }]);
    expect(decide(getOnly, request({ method: 'HEAD' })).rule).toBe('get');
    const headOnly = policyOf([{ name: 'head', action: 'allow', to: { methods: ['HEAD'] } }]);
    expect(decide(headOnly, request({ method: 'GET' })).rule).toBe('default-deny');
  });

  it('ok/header names read "_" as "-", in the rule and in the request', () => {
    const policy = policyOf([
      { name: 'no-admin', action: 'deny', when: { headers: { 'x-role': ['admin'] } } },
      { name: 'no-debug', action: 'deny', when: { headers: { x_debug: ['1'] } } },
      { name: 'rest', action: 'allow' },
    ]);
    const lines = (name: string, value: string) => new Map([[name, [value]]]);
    expect(decide(policy, request({ headers: lines('x-role', 'admin') })).rule).toBe('no-admin');
    expect(decide(policy, request({ headers: lines('x-debug', '1') })).rule).toBe('no-debug');
    expect(decide(policy, request({ headers: lines('x-role', 'user') })).rule).toBe('rest');
  });
});
