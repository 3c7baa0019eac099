// The refusal of a call a route cannot serve: its expected IDs depend on `{namespace}` (the called host's second
// label, `<service>.<namespace>[.svc…]`) and the host gives no such label, so no peer ID would be accepted. Saying
// so up front spares a DNS lookup and an mTLS connection whose only outcome is a peer-identity error. Pure.
import { expectedIdsFor, type RouteConfig } from '../../config/index.js';
import { NAMESPACE_TEMPLATE } from '../../config/route-match.js';
import { MeshauthError } from '../../errors/index.js';
import type { TrustDomain } from '../../identity/index.js';

/** 502 ROUTE_NOT_FOUND (reason `no_namespace`) when `route` expects no ID of `host`; undefined otherwise. */
export function namespaceRefusal(
  route: RouteConfig,
  host: string,
  trustDomain: TrustDomain,
): MeshauthError | undefined {
  if (!route.idPatterns.some((pattern) => pattern.includes(NAMESPACE_TEMPLATE))) return undefined;
  // Other IDs of the route (exact, or patterns without {namespace}) still name who may answer: the call goes on.
  const expected = expectedIdsFor(route, host, trustDomain);
  if (expected.exact.length > 0 || expected.prefixes.length > 0) return undefined;
  return new MeshauthError(
    'MESHAUTH_ERR_ROUTE_NOT_FOUND',
    `host ${host} has no namespace label for {namespace} in the ids of route ${route.host}: call ` +
      '<service>.<namespace>[.svc.cluster.local], or give the route an exact ID',
    { reason: 'no_namespace', detail: { host, route: route.host } },
  );
}
