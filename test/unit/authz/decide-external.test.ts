// Requests without an mTLS peer (the sidecar's external listener, Issue 5): rules with `from` never match them,
// `when.user` (client_id, scope) does; explain() agrees with decide() and the deny audit line has an empty peer.
import { describe, expect, it } from 'vitest';
import type { AuthzRequest } from '../../../src/authz/authz-request.js';
import { decide } from '../../../src/authz/decide.js';
import { explain } from '../../../src/authz/decide-explain.js';
import { denyAuditRecord } from '../../../src/authz/deny-audit-record.js';
import { FRONTEND, GATEWAY, policyOf, request } from './authz-fixtures.js';

const CLIENT = { sub: 'reporting', iss: 'https://idp.example', client_id: 'reporting', scope: 'orders:read' };

function external(init: Partial<AuthzRequest> = {}): AuthzRequest {
  const { peerId: _peer, ...rest } = request({ user: CLIENT, ...init });
  return rest;
}

const policy = policyOf([
  { name: 'mesh-frontend', action: 'allow', from: { ids: [FRONTEND] } },
  { name: 'mesh-not-gateway', action: 'allow', from: { notIds: [GATEWAY] } },
  { name: 'mesh-any', action: 'allow', from: {} },
  { name: 'mesh-td', action: 'allow', from: { trustDomains: ['example.org'] } },
  { name: 'mesh-ns', action: 'allow', from: { namespaces: ['shop'] } },
  { name: 'mesh-chain', action: 'allow', when: { chain: { includes: [`${FRONTEND}`] } } },
  {
    name: 'reporting-client',
    action: 'allow',
    to: { methods: ['GET'], paths: ['/orders/*'] },
    when: { user: { client_id: ['reporting'], scope: ['orders:read'] } },
  },
  { name: 'no-admin', action: 'deny', to: { paths: ['/admin/*'] } },
  { name: 'no-admin-from-frontend', action: 'deny', from: { ids: [FRONTEND] }, to: { paths: ['/secret/*'] } },
]);

describe('decide without an mTLS peer (external listener)', () => {
  const cases: Array<[string, Partial<AuthzRequest>, 'allow' | 'deny', string]> = [
    ['ok/client_id + scope rule allows', { path: '/orders/1' }, 'allow', 'reporting-client'],
    [
      'fail/other client_id: no from-rule stands in',
      { path: '/orders/1', user: { ...CLIENT, client_id: 'x' } },
      'deny',
      'default-deny',
    ],
    ['fail/missing scope', { path: '/orders/1', user: { ...CLIENT, scope: 'orders:write' } }, 'deny', 'default-deny'],
    ['fail/no user at all', { path: '/orders/1', user: undefined }, 'deny', 'default-deny'],
    ['fail/a peer-less deny rule still applies', { path: '/admin/x' }, 'deny', 'no-admin'],
    ['fail/other method', { path: '/orders/1', method: 'POST' }, 'deny', 'default-deny'],
    // Found by the policy property test: a chain without a peer satisfied `when.chain` through its first hop.
    [
      'fail/a chain without a peer matches no chain rule',
      { path: '/other', chain: [FRONTEND] },
      'deny',
      'default-deny',
    ],
  ];
  it.each(cases)('%s', (_name, init, decision, rule) => {
    const r = external(init);
    expect(decide(policy, r)).toMatchObject({ decision, rule });
    expect(explain(policy, r)).toMatchObject({ decision, rule });
  });

  it('fail/every rule with `from` (ids, notIds, {}, trustDomains, namespaces) and chain rules miss', () => {
    const e = explain(policy, external({ path: '/other' }));
    const byName = new Map(e.trace.map((t) => [t.rule, t]));
    for (const name of ['mesh-frontend', 'mesh-not-gateway', 'mesh-any', 'mesh-td', 'mesh-ns']) {
      expect(byName.get(name)?.matched, name).toBe(false);
      expect(byName.get(name)?.misses[0]).toMatchObject({ field: 'from', actual: '(no mTLS peer: external client)' });
    }
    expect(byName.get('mesh-chain')?.misses.map((m) => m.field)).toEqual(['when.chain.includes']);
    expect(e.rule).toBe('default-deny');
  });

  it('ok/the same policy still serves mesh peers (the peer cache does not mix them up)', () => {
    expect(decide(policy, external({ path: '/other' })).rule).toBe('default-deny');
    expect(decide(policy, request({ path: '/other' })).rule).toBe('mesh-frontend');
    expect(decide(policy, request({ path: '/secret/x' })).rule).toBe('no-admin-from-frontend');
    expect(decide(policy, external({ path: '/secret/x' })).rule).toBe('default-deny');
    expect(decide(policy, request({ path: '/other', peer: GATEWAY })).rule).toBe('mesh-any');
  });

  it('ok/the deny audit record has an empty peerId', () => {
    const r = external({ path: '/admin/x' });
    expect(denyAuditRecord(r, decide(policy, r))).toMatchObject({ peerId: '', rule: 'no-admin', userSub: 'reporting' });
  });
});
