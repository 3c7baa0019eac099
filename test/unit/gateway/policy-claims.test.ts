// `when.user.claims` in the policy language the sidecars and the gateway share: every parsed condition is enforced.
import { describe, expect, it } from 'vitest';
import { compilePolicyText, decide } from '../../../src/authz/index.js';

const POLICY = `apiVersion: meshauth.dev/v1
kind: Policy
rules:
  - name: acme-admins
    action: allow
    to: { paths: ["/admin/*"] }
    when: { user: { claims: { tenant: { equals: acme }, realm_access.roles: { includes: admin } } } }
`;

const request = (user: Record<string, unknown> | undefined) => ({
  method: 'GET',
  path: '/admin/x',
  host: 'shop',
  port: 443,
  headers: {},
  sourceIp: '127.0.0.1',
  user,
  now: new Date(),
});

describe('policy when.user.claims (enforced)', () => {
  it('ok/every claim condition holds; fail/one fails → default deny', () => {
    const { policy } = compilePolicyText(POLICY, 'edge-policy.yaml');
    expect(decide(policy, request({ sub: 'a', tenant: 'acme', realm_access: { roles: ['admin'] } })).rule).toBe(
      'acme-admins',
    );
    expect(decide(policy, request({ sub: 'a', tenant: 'acme', realm_access: { roles: ['user'] } })).rule).toBe(
      'default-deny',
    );
    expect(decide(policy, request({ sub: 'a', tenant: 'other', realm_access: { roles: ['admin'] } })).rule).toBe(
      'default-deny',
    );
    expect(decide(policy, request(undefined)).rule).toBe('default-deny');
  });
});

describe('policy when.user.claims syntax', () => {
  it('fail/a malformed claim condition is a policy error naming the field', () => {
    expect(() => compilePolicyText(POLICY.replace('{ equals: acme }', '{ matches: acme }'), 'p.yaml')).toThrow(
      /claims/,
    );
  });
});
