// A route's own end-user requirements (scopes, roles, groups, claims), checked before the policy file. Pure.
// Returns the first unmet requirement's name (the `rule` label of the deny), or undefined when all hold.
import type { EndUser } from '../authn/end-user.js';
import { claimAt, claimsMatch } from '../authz/policy/match-claims.js';
import type { GatewayRoute } from './gateway-config.js';

export type EdgeRequirement = 'scopes' | 'roles' | 'groups' | 'claims';

export function unmetRequirement(route: GatewayRoute, user: EndUser, rolesClaim: string): EdgeRequirement | undefined {
  if (route.scopes.length > 0 && !route.scopes.every((s) => hasValue(user.claims.scope, s))) return 'scopes';
  if (route.roles.length > 0) {
    const roles = claimAt(user.claims, rolesClaim);
    if (!route.roles.some((r) => hasValue(roles, r))) return 'roles';
  }
  if (route.groups.length > 0 && !route.groups.some((g) => hasValue(user.claims.groups, g))) return 'groups';
  if (route.claims !== undefined && !claimsMatch(route.claims, user.claims)) return 'claims';
  return undefined;
}

/** A space-separated string (OAuth scope) or an array holding `value`. */
function hasValue(claim: unknown, value: string): boolean {
  if (typeof claim === 'string') return claim === value || claim.split(' ').includes(value);
  return Array.isArray(claim) && claim.includes(value);
}
