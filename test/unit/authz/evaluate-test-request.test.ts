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

  it('ok/an ambiguous path with a valid host is the path refusal', () => {
    const outcome = evaluateTestRequest(policy, { from: FRONTEND, method: 'GET', path: '/admin;x', host: 'a.b', now });
    expect(outcome).toMatchObject({ kind: 'reject', code: 'MESHAUTH_ERR_PATH_AMBIGUOUS', reason: 'path_param' });
  });
});
