// EndUser construction: the policy view, the x-meshauth-user view, and the sub fallback (RFC 9068 §2.2).
import { describe, expect, it } from 'vitest';
import { endUserFromClaims, parseUserHeader, userHeaderValue } from '../../../src/authn/index.js';

const BASE = { iss: 'https://idp.example', aud: 'shop', exp: 2_000_000_000, jti: 'j' };

describe('endUserFromClaims', () => {
  it('ok/policy view has sub, iss, client_id, scope, groups; header view only sub, iss and configured claims', () => {
    const user = endUserFromClaims(
      { ...BASE, sub: 'alice', client_id: 'web', scope: 'a b', groups: ['admins', 7], email: 'a@x', secret: 's' },
      ['scope', 'email'],
    );
    expect(user).toBeDefined();
    expect(user?.claims).toEqual({
      sub: 'alice',
      iss: BASE.iss,
      client_id: 'web',
      scope: 'a b',
      groups: ['admins', 7],
      email: 'a@x',
    });
    expect(user?.exposed).toEqual({ sub: 'alice', iss: BASE.iss, scope: 'a b', email: 'a@x' });
    expect(user?.expiresAt).toBe(BASE.exp);
    expect(Object.isFrozen(user)).toBe(true);
  });

  it('ok/client-credentials token without sub uses client_id', () => {
    expect(endUserFromClaims({ ...BASE, client_id: 'svc' }, [])?.sub).toBe('svc');
  });

  // Before, an empty `sub` fell back to client_id: a signed `{sub: "", client_id: "alice"}` became the user alice.
  it('fail/an empty sub is malformed, never replaced by client_id', () => {
    expect(endUserFromClaims({ ...BASE, sub: '', client_id: 'alice' }, [])).toBeUndefined();
  });

  it('fail/a sub that is no string is never replaced by client_id', () => {
    expect(endUserFromClaims({ ...BASE, sub: 7, client_id: 'alice' }, [])).toBeUndefined();
  });

  it('fail/no sub and no client_id', () => {
    expect(endUserFromClaims({ ...BASE }, [])).toBeUndefined();
    expect(endUserFromClaims({ ...BASE, sub: '' }, [])).toBeUndefined();
  });

  it('ok/x-meshauth-user is base64url JSON and round-trips', () => {
    const user = endUserFromClaims({ ...BASE, sub: 'alice', groups: ['g/ü'] }, ['groups']);
    if (user === undefined) throw new Error('no user');
    const value = userHeaderValue(user);
    expect(value).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(parseUserHeader(value)).toEqual({ sub: 'alice', iss: BASE.iss, groups: ['g/ü'] });
  });

  it('fail/parseUserHeader rejects non-object values', () => {
    expect(parseUserHeader('%%%')).toBeUndefined();
    expect(parseUserHeader(Buffer.from('[1]').toString('base64url'))).toBeUndefined();
  });
});
