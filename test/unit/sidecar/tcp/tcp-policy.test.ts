// L4 policy for TCP tunnels: which rules may apply to a TCP connection (no HTTP-only condition unless `to.ports`
// keeps the rule off the TCP app port), and decisions on the synthetic L4 request.
import { describe, expect, it } from 'vitest';
import { decide } from '../../../../src/authz/index.js';
import { isMeshauthError } from '../../../../src/errors/index.js';
import { SpiffeId } from '../../../../src/identity/index.js';
import { assertTcpPolicy, tcpAuthzRequest, validateTcpPolicy } from '../../../../src/sidecar/tcp/tcp-policy.js';
import { FRONTEND, ORDERS, policyOf } from '../../authz/authz-fixtures.js';

const APP_PORT = 6379;
const HTTP_PORT = 15006;

describe('validateTcpPolicy', () => {
  const cases: { name: string; rule: Record<string, unknown>; fields: string[] }[] = [
    { name: 'ok/from ids only', rule: { from: { ids: [FRONTEND] } }, fields: [] },
    {
      name: 'ok/namespaces, sourceIps and time',
      rule: {
        from: { namespaces: ['shop'] },
        when: { sourceIps: ['10.0.0.0/8'], time: { from: '08:00', to: '18:00' } },
      },
      fields: [],
    },
    { name: 'ok/to.ports with the app port', rule: { to: { ports: [APP_PORT] } }, fields: [] },
    {
      name: 'ok/an HTTP rule kept off TCP by to.ports',
      rule: { to: { ports: [HTTP_PORT], paths: ['/admin/*'], methods: ['GET'] } },
      fields: [],
    },
    { name: 'fail/paths on a rule that can match TCP', rule: { to: { paths: ['/admin/*'] } }, fields: ['to.paths'] },
    { name: 'fail/methods', rule: { to: { methods: ['GET'] } }, fields: ['to.methods'] },
    { name: 'fail/hosts', rule: { to: { hosts: ['db.data'] } }, fields: ['to.hosts'] },
    {
      name: 'fail/headers reported once by key',
      rule: { when: { headers: { 'x-a': ['1'], 'x-b': ['2'] } } },
      fields: ['when.headers'],
    },
    { name: 'fail/user', rule: { when: { user: { scope: ['db'] } } }, fields: ['when.user'] },
    { name: 'fail/chain', rule: { when: { chain: { includes: [ORDERS] } } }, fields: ['when.chain'] },
    {
      name: 'fail/to.ports with both ports still matches TCP',
      rule: { to: { ports: [APP_PORT, HTTP_PORT], paths: ['/x'] } },
      fields: ['to.paths'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      for (const action of ['allow', 'deny']) {
        const policy = policyOf([{ name: 'r1', action, ...c.rule }]);
        const problems = validateTcpPolicy(policy, APP_PORT);
        expect(problems.map((p) => p.field)).toEqual(c.fields);
        for (const p of problems) {
          expect(p.rule).toBe('rules[0] "r1"');
          expect(p.message).toContain(`app port ${APP_PORT}`);
        }
      }
    });
  }

  it('fail/assertTcpPolicy names the file, the rule and the field', () => {
    const policy = policyOf([
      { name: 'db-clients', action: 'allow', from: { namespaces: ['shop'] } },
      { name: 'no-admin', action: 'deny', to: { paths: ['/admin/*'] } },
    ]);
    let error: unknown;
    try {
      assertTcpPolicy(policy, APP_PORT, '/etc/meshauth/policy.yaml');
    } catch (e) {
      error = e;
    }
    expect(isMeshauthError(error, 'MESHAUTH_ERR_POLICY_INVALID')).toBe(true);
    expect((error as Error).message).toContain(
      '/etc/meshauth/policy.yaml: rules[1] "no-admin" to.paths: can match TCP',
    );
    expect(() => assertTcpPolicy(policyOf([{ name: 'ok', action: 'allow' }]), APP_PORT, 'p.yaml')).not.toThrow();
  });
});

describe('decide on a TCP connection', () => {
  const policy = policyOf([
    { name: 'shop-to-db', action: 'allow', from: { namespaces: ['shop'] }, to: { ports: [APP_PORT] } },
    { name: 'no-outside', action: 'deny', when: { sourceIps: ['192.168.0.0/16'] } },
    { name: 'http-get', action: 'allow', to: { ports: [HTTP_PORT], methods: ['GET'] } },
  ]);
  const at = new Date('2026-03-04T10:00:00Z');
  const cases: { name: string; peer: string; ip: string; port: number; decision: string; rule: string }[] = [
    {
      name: 'ok/shop peer allowed',
      peer: FRONTEND,
      ip: '10.0.0.1',
      port: APP_PORT,
      decision: 'allow',
      rule: 'shop-to-db',
    },
    {
      name: 'fail/deny by source IP wins',
      peer: FRONTEND,
      ip: '192.168.1.1',
      port: APP_PORT,
      decision: 'deny',
      rule: 'no-outside',
    },
    {
      name: 'fail/other namespace',
      peer: 'spiffe://example.org/ns/edge/sa/gw',
      ip: '10.0.0.1',
      port: APP_PORT,
      decision: 'deny',
      rule: 'default-deny',
    },
    {
      name: 'fail/a method rule never matches a TCP connection',
      peer: FRONTEND,
      ip: '10.0.0.1',
      port: HTTP_PORT,
      decision: 'deny',
      rule: 'default-deny',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const result = decide(policy, tcpAuthzRequest(SpiffeId.parse(c.peer), c.ip, c.port, at));
      expect([result.decision, result.rule]).toEqual([c.decision, c.rule]);
    });
  }
});
