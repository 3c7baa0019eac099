// evaluateTestRequest (`meshauth policy test`): a request the inbound refuses is reported as the refusal the inbound
// sends first.
import { describe, expect, it } from 'vitest';
import { evaluateTestRequest } from '../../../src/authz/index.js';
import { FRONTEND, policyOf } from './authz-fixtures.js';

describe('evaluateTestRequest', () => {
  const policy = policyOf([{ name: 'all', action: 'allow' }]);
  const now = new Date('2026-01-01T00:00:00Z');

  it('fail/a bad --host is reported before an ambiguous path, as the inbound checks the head first', () => {
    const outcome = evaluateTestRequest(policy, {
      from: FRONTEND,
      method: 'GET',
      path: '/admin;x',
      host: 'orders.shop.svc..',
      now,
    });
    expect(outcome).toMatchObject({
      kind: 'reject',
      status: 400,
      code: 'MESHAUTH_ERR_BAD_REQUEST',
      reason: 'host_invalid',
    });
  });

  it.each(['127.1', '[0::1]'])("fail/--host %s, another spelling of an IP address, is the inbound's 400", (host) => {
    const outcome = evaluateTestRequest(policy, { from: FRONTEND, method: 'GET', path: '/', host, now });
    expect(outcome).toMatchObject({ kind: 'reject', code: 'MESHAUTH_ERR_BAD_REQUEST', reason: 'host_invalid' });
  });

  it('ok/an ambiguous path with a valid host is the path refusal', () => {
    const outcome = evaluateTestRequest(policy, { from: FRONTEND, method: 'GET', path: '/admin;x', host: 'a.b', now });
    expect(outcome).toMatchObject({ kind: 'reject', code: 'MESHAUTH_ERR_PATH_AMBIGUOUS', reason: 'path_param' });
  });

  // The h2 inbound refuses these before any rule (pipeline/sinks.ts); HTTP/1.1's parser refuses `1GET` too.
  it.each(['1GET', 'CONNECT', '-X', 'get', 'FOO'])(
    'fail/method %s is the 400 the inbound sends, not a decision',
    (method) => {
      const outcome = evaluateTestRequest(policy, { from: FRONTEND, method, path: '/', now });
      expect(outcome).toMatchObject({
        kind: 'reject',
        status: 400,
        code: 'MESHAUTH_ERR_METHOD_INVALID',
        reason: 'method',
      });
    },
  );

  it.each(['GET', 'M-SEARCH', 'PROPFIND', 'QUERY'])('ok/method %s reaches the policy', (method) => {
    const outcome = evaluateTestRequest(policy, { from: FRONTEND, method, path: '/', now });
    expect(outcome).toMatchObject({ kind: 'decision', explanation: { decision: 'allow' } });
  });

  it.each([
    ['fail/escaped control', '/ad%09min', 'bad_char'],
    ['fail/trailing escaped space', '/admin%20', 'bad_char'],
    ['fail/double-encoded dot segment', '/public/%252e%252e/admin', 'bad_percent_encoding'],
  ])('%s is the 400 the inbound sends', (_name, path, reason) => {
    const outcome = evaluateTestRequest(policy, { from: FRONTEND, method: 'GET', path, now });
    expect(outcome).toMatchObject({ kind: 'reject', status: 400, code: 'MESHAUTH_ERR_PATH_AMBIGUOUS', reason });
  });

  it('fail/a POST with ?_method=DELETE is decided as the DELETE the app routes too, and shown as that DELETE', () => {
    const noDelete = policyOf([
      { name: 'no-order-delete', action: 'deny', to: { methods: ['DELETE'], paths: ['/orders/*'] } },
      { name: 'all', action: 'allow' },
    ]);
    const outcome = evaluateTestRequest(noDelete, {
      from: FRONTEND,
      method: 'POST',
      path: '/orders/1?_method=DELETE',
      now,
    });
    expect(outcome).toMatchObject({
      kind: 'decision',
      request: { method: 'DELETE', path: '/orders/1' },
      explanation: { decision: 'deny', rule: 'no-order-delete' },
    });
    const plain = evaluateTestRequest(noDelete, { from: FRONTEND, method: 'POST', path: '/orders/1?x=1', now });
    expect(plain).toMatchObject({ kind: 'decision', request: { method: 'POST' }, explanation: { rule: 'all' } });
  });

  // The dry run reads the headers as the live policy does: those the app would get (the inbound's copy), with Host.
  describe('headers as the app would get them', () => {
    const headerPolicy = policyOf([
      { name: 'no-admin-host', action: 'deny', when: { headers: { host: ['admin.internal'] } } },
      { name: 'no-override', action: 'deny', when: { headers: { 'x-http-method-override': ['DELETE'] } } },
      { name: 'no-upgrade', action: 'deny', when: { headers: { upgrade: ['websocket'] } } },
      { name: 'no-admin-forwarded', action: 'deny', when: { headers: { 'x-forwarded-host': ['admin.internal'] } } },
      { name: 'all', action: 'allow' },
    ]);
    const decision = (input: Partial<Parameters<typeof evaluateTestRequest>[1]>) => {
      const outcome = evaluateTestRequest(headerPolicy, { from: FRONTEND, method: 'GET', path: '/', now, ...input });
      return outcome.kind === 'decision' ? outcome.explanation.rule : outcome.reason;
    };

    it('fail/--host meets a rule on the host header, as the Host line does live', () => {
      expect(decision({ host: 'admin.internal' })).toBe('no-admin-host');
    });

    it('ok/a method override or a hop-by-hop header the app never gets meets no rule', () => {
      expect(decision({ headers: { 'X-HTTP-Method-Override': 'DELETE' } })).toBe('all');
      expect(decision({ headers: { upgrade: 'websocket' } })).toBe('all');
    });

    it('ok/a forwarding header counts only from a trusted forwarder (--trusted-forwarder), as the live inbound keeps it', () => {
      const forwarded = { headers: { 'X-Forwarded-Host': 'admin.internal' } };
      expect(decision(forwarded)).toBe('all');
      expect(decision({ ...forwarded, trustedForwarder: true })).toBe('no-admin-forwarded');
    });
  });
});
