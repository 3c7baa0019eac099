// A route's own end-user requirements (scopes, roles, groups, claims), checked before the policy file. Pure.
// Returns the first unmet requirement's name (the `rule` label of the deny), or undefined when all hold.
import { claimBytes } from '../authn/claim-size.js';
import type { EndUser } from '../authn/end-user.js';
import { claimAt, claimsMatch } from '../authz/policy/match-claims.js';
import { MeshauthError } from '../errors/index.js';
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

/**
 * The claims a passport carries are bounded (`limits.maxClaimBytes`): a larger user is refused, never truncated.
 * Measured as the sidecar's vouchers measure them (claimBytes: once per user object).
 */
export function checkClaimSize(
  user: EndUser,
  maxBytes: number,
  code: 'MESHAUTH_ERR_TOKEN_INVALID' | 'MESHAUTH_ERR_LOGIN_FAILED',
): void {
  const size = claimBytes(user);
  if (size > maxBytes) {
    throw new MeshauthError(code, `end-user claims are ${size} bytes; limits.maxClaimBytes is ${maxBytes}`, {
      reason: 'claims_too_large',
    });
  }
}
