import { describe, expect, it } from 'vitest';
import type { AuthzUser } from '../../../src/authz/authz-request.js';
import { userFieldMatches } from '../../../src/authz/policy/match-user.js';

describe('end-user conditions', () => {
  const scope = { scope: ['orders:read', 'orders:write'] };
  it.each([
    ['ok/scope-string-all-present', { scope: 'openid orders:read orders:write' }, true],
    ['ok/scope-array-all-present', { scope: ['orders:write', 'orders:read'] }, true],
    ['fail/scope-one-missing', { scope: 'orders:read' }, false],
    ['fail/scope-substring-is-not-a-scope', { scope: 'orders:readx orders:write' }, false],
    ['fail/scope-prefix-is-not-a-scope', { scope: 'xorders:read orders:write' }, false],
    ['fail/scope-absent', {}, false],
    ['fail/scope-wrong-type', { scope: 42 }, false],
  ])('%s', (_name, user, expected) => {
    expect(userFieldMatches(scope, 'scope', user as AuthzUser)).toBe(expected);
  });

  it.each([
    ['ok/groups-any-one', { groups: ['staff', 'ops'] }, true],
    ['ok/groups-single-string', { groups: 'admins' }, true],
    ['fail/groups-none', { groups: ['staff'] }, false],
    ['fail/groups-absent', {}, false],
  ])('%s', (_name, user, expected) => {
    expect(userFieldMatches({ groups: ['ops', 'admins'] }, 'groups', user as AuthzUser)).toBe(expected);
  });

  it.each([
    ['ok/sub', 'sub', { sub: 'alice' }, true],
    ['fail/sub', 'sub', { sub: 'mallory' }, false],
    ['ok/iss', 'iss', { iss: 'https://idp' }, true],
    ['ok/client_id', 'client_id', { client_id: 'web' }, true],
    ['fail/client_id-wrong-type', 'client_id', { client_id: ['web'] }, false],
  ] as const)('%s', (_name, field, user, expected) => {
    const condition = { sub: ['alice', 'bob'], iss: ['https://idp'], client_id: ['web'] };
    expect(userFieldMatches(condition, field, user as AuthzUser)).toBe(expected);
  });

  it('fail/no end user never matches, even an unconstrained field', () => {
    expect(userFieldMatches({}, 'sub', undefined)).toBe(false);
    expect(userFieldMatches({ scope: ['a'] }, 'scope', undefined)).toBe(false);
  });
});
