// End-user conditions for `when.user`. Pure. A rule with `when.user` never matches a request without a
// verified end user. Lists are OR (`sub`, `iss`, `client_id`: one of; `groups`: member of at least one listed
// group), except `scope`: every listed scope must be granted (the scope claim is space-separated or an array).
// `claims` matches any claim by dotted path (match-claims.ts); it is not a UserField but its own check.
import type { AuthzUser } from '../authz-request.js';
import { type ClaimConditions, claimsMatch } from './match-claims.js';

export interface UserCondition {
  readonly sub?: readonly string[] | undefined;
  readonly iss?: readonly string[] | undefined;
  readonly client_id?: readonly string[] | undefined;
  readonly scope?: readonly string[] | undefined;
  readonly groups?: readonly string[] | undefined;
  readonly claims?: ClaimConditions | undefined;
}

export type UserField = Exclude<keyof UserCondition, 'claims'>;

/** `when.user.claims`: every listed path holds its condition (false without an end user). */
export function userClaimsMatch(conditions: ClaimConditions, user: AuthzUser | undefined): boolean {
  return user !== undefined && claimsMatch(conditions, user);
}

export function userFieldMatches(condition: UserCondition, field: UserField, user: AuthzUser | undefined): boolean {
  const wanted = condition[field];
  if (user === undefined) return false;
  if (wanted === undefined) return true;
  switch (field) {
    case 'scope':
      return wanted.every((scope) => hasScope(user.scope, scope));
    case 'groups':
      return wanted.some((group) => inList(user.groups, group));
    default: {
      const claim = user[field];
      return typeof claim === 'string' && wanted.includes(claim);
    }
  }
}

function hasScope(claim: unknown, scope: string): boolean {
  if (typeof claim === 'string') {
    let at = claim.indexOf(scope);
    while (at !== -1) {
      const end = at + scope.length;
      if ((at === 0 || claim.charCodeAt(at - 1) === 0x20) && (end === claim.length || claim.charCodeAt(end) === 0x20)) {
        return true;
      }
      at = claim.indexOf(scope, at + 1);
    }
    return false;
  }
  return inList(claim, scope);
}

function inList(claim: unknown, value: string): boolean {
  if (typeof claim === 'string') return claim === value;
  return Array.isArray(claim) && claim.includes(value);
}
