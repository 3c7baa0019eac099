// A POST's `_method` query parameter: method-override middleware that reads the query (express's
// `methodOverride('_method')`) makes the app route such a POST as the method it names, so the policy decides it as that
// method too, and a deny for either method wins. Pure. (The X-HTTP-Method-Override headers never reach the app: the
// inbound's header copy drops them; a query cannot be dropped without changing what the app reads.)
import type { AuthzRequest } from './authz-request.js';
import { isMethodToken } from './method-validate.js';
import type { CompiledPolicy } from './policy/compiled-policy.js';
import type { Decision } from './policy/decision.js';

export interface OverrideDecision<R extends AuthzRequest, D extends Decision> {
  /** The request as decided: the one received, or with the overriding method when that decision denied. */
  readonly request: R;
  readonly decision: D;
}

/**
 * `decideFn(policy, request)` (decide, or explain for `meshauth policy test`), and for a POST whose query (as
 * normalizePath split it off, with its `?`) has `_method` parameters, the same for each method they name: upper-cased,
 * when that is an HTTP token (what the middleware routes). The first deny wins; an override can only ever make a
 * request stricter, never allow what the POST was denied.
 */
export function decideWithMethodOverride<R extends AuthzRequest, D extends Decision>(
  policy: CompiledPolicy,
  request: R,
  query: string,
  decideFn: (policy: CompiledPolicy, request: R) => D,
): OverrideDecision<R, D> {
  const decision = decideFn(policy, request);
  if (decision.decision === 'deny' || request.method !== 'POST' || !mayNameOverride(query)) {
    return { request, decision };
  }
  for (const method of overridingMethods(query)) {
    const overridden: R = { ...request, method };
    const other = decideFn(policy, overridden);
    if (other.decision === 'deny') return { request: overridden, decision: other };
  }
  return { request, decision };
}

// The key is read decoded, as the middleware's query parser does (`%5Fmethod` is `_method` to it): a key that is
// `_method` once decoded holds `_method` or a "%". Anything else costs one scan.
function mayNameOverride(query: string): boolean {
  return query.length > 1 && (query.includes('_method') || query.includes('%'));
}

/** The distinct methods the query's `_method` parameters name (express takes the first; each is checked here). */
function overridingMethods(query: string): Set<string> {
  const methods = new Set<string>();
  for (const value of new URLSearchParams(query).getAll('_method')) {
    const method = value.toUpperCase();
    if (method !== 'POST' && isMethodToken(method)) methods.add(method);
  }
  return methods;
}
