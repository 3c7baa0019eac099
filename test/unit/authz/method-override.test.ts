// decideWithMethodOverride: a POST with `?_method=DELETE` is decided as the DELETE that method-override middleware
// (express's methodOverride('_method'), which reads the query on a POST) makes of it, too; a deny for either wins.
import { describe, expect, it } from 'vitest';
import { decide, decideWithMethodOverride, explain } from '../../../src/authz/index.js';
import { policyOf, request } from './authz-fixtures.js';

const policy = policyOf([
  { name: 'no-order-delete', action: 'deny', to: { methods: ['DELETE'], paths: ['/orders/*'] } },
  { name: 'no-purge', action: 'deny', to: { methods: ['PURGE'], paths: ['/cache/*'] } },
  { name: 'all', action: 'allow' },
]);

function decided(method: string, path: string, query: string) {
  const result = decideWithMethodOverride(policy, request({ method, path }), query, decide);
  return { rule: result.decision.rule, method: result.request.method };
}

describe('decideWithMethodOverride', () => {
  it.each([
    ['fail/override-to-a-denied-method', '?_method=DELETE', 'no-order-delete', 'DELETE'],
    ['fail/lower-case-value-upper-cased-as-the-middleware-does', '?_method=delete', 'no-order-delete', 'DELETE'],
    ['fail/among-other-parameters', '?page=2&_method=Delete&x', 'no-order-delete', 'DELETE'],
    ['fail/escaped-key-read-decoded', '?%5Fmethod=DELETE', 'no-order-delete', 'DELETE'],
    ['fail/escaped-value-read-decoded', '?_method=%44ELETE', 'no-order-delete', 'DELETE'],
    ['fail/every-value-is-decided-not-only-the-first', '?_method=PUT&_method=DELETE', 'no-order-delete', 'DELETE'],
    ['ok/override-to-an-allowed-method', '?_method=PUT', 'all', 'POST'],
    ['ok/no-override', '?x=1', 'all', 'POST'],
    ['ok/no-query', '', 'all', 'POST'],
    ['ok/another-key', '?method=DELETE&_methods=DELETE&x_method=DELETE', 'all', 'POST'],
    ['ok/not-a-method-token', '?_method=DEL%20ETE', 'all', 'POST'],
    ['ok/empty-value', '?_method=', 'all', 'POST'],
  ])('%s: POST /orders/1%s', (_name, query, rule, method) => {
    expect(decided('POST', '/orders/1', query)).toEqual({ rule, method });
  });

  it('fail/any token is decided, not only the methods Node knows (Symfony routes any upper-case name)', () => {
    expect(decided('POST', '/cache/x', '?_method=purge')).toEqual({ rule: 'no-purge', method: 'PURGE' });
  });

  it('ok/only a POST is overridden, as the middleware does', () => {
    expect(decided('GET', '/orders/1', '?_method=DELETE')).toEqual({ rule: 'all', method: 'GET' });
    expect(decided('PUT', '/orders/1', '?_method=DELETE')).toEqual({ rule: 'all', method: 'PUT' });
  });

  it('ok/an override never allows what the POST itself was denied', () => {
    const postDenied = policyOf([
      { name: 'no-post', action: 'deny', to: { methods: ['POST'] } },
      { name: 'all', action: 'allow' },
    ]);
    const result = decideWithMethodOverride(postDenied, request({ method: 'POST' }), '?_method=GET', decide);
    expect(result.decision.rule).toBe('no-post');
    expect(result.request.method).toBe('POST');
  });

  it('ok/explain gets the same decision (meshauth policy test)', () => {
    const result = decideWithMethodOverride(
      policy,
      request({ method: 'POST', path: '/orders/1' }),
      '?_method=DELETE',
      explain,
    );
    expect(result.decision.rule).toBe('no-order-delete');
    expect(result.decision.trace.find((t) => t.rule === 'no-order-delete')?.matched).toBe(true);
  });
});
