import { describe, expect, it } from 'vitest';
import { decide } from '../../../src/authz/decide.js';
import { denyAuditRecord } from '../../../src/authz/deny-audit-record.js';
import { FRONTEND, policyOf, request } from './authz-fixtures.js';

describe('denyAuditRecord', () => {
  it('ok/one flat JSON object with peer, method, normalized path, user sub, rule and mode', () => {
    const policy = policyOf([{ name: 'no-admin', action: 'deny', to: { paths: ['/admin'] } }], { mode: 'audit' });
    const r = request({ method: 'DELETE', path: '/admin', user: { sub: 'alice', scope: 'x' } });
    const record = denyAuditRecord(r, decide(policy, r));
    expect(record).toEqual({
      event: 'authz_deny',
      peerId: FRONTEND,
      method: 'DELETE',
      path: '/admin',
      userSub: 'alice',
      rule: 'no-admin',
      mode: 'audit',
      enforced: false,
    });
    expect(JSON.parse(JSON.stringify(record))).toEqual(record);
  });

  it('ok/no userSub without an end user; long values are truncated', () => {
    const r = request({ path: `/${'a'.repeat(5000)}` });
    const record = denyAuditRecord(r, decide(policyOf([]), r));
    expect(record).not.toHaveProperty('userSub');
    expect(record.path.length).toBeLessThanOrEqual(1025);
    expect(record.rule).toBe('default-deny');
  });
});
