// The Policy Decision Point: decide(policy, request) → Decision. Pure: no I/O, no clock (time is in the
// request). Precedence: any matching deny wins; otherwise any matching allow; otherwise deny ("default-deny").
// The index hands over only the rules whose `from` and `to.methods` fit; the result objects are precompiled.
// A request without an mTLS peer (the external listener) only ever sees the rules without `from`.
import type { AuthzRequest } from './authz-request.js';
import type { CompiledPolicy, CompiledRule } from './policy/compiled-policy.js';
import type { Decision } from './policy/decision.js';
import type { RequestContext } from './policy/request-context.js';

export function decide(policy: CompiledPolicy, request: AuthzRequest): Decision {
  const lists = policy.rulesFor(request.peerId, request.method);
  const context = policy.context.reset(request);
  for (const rule of lists.denies) {
    if (matches(rule, request, context)) return rule.decision;
  }
  for (const rule of lists.allows) {
    if (matches(rule, request, context)) return rule.decision;
  }
  return policy.defaultDecision;
}

function matches(rule: CompiledRule, request: AuthzRequest, context: RequestContext): boolean {
  for (const check of rule.checks) {
    if (!check.test(request, context)) return false;
  }
  return true;
}
