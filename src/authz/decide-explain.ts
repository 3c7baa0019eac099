// explain(): the same decision as decide(), plus, for every rule, whether it matched and which of its conditions
// did not (for `meshauth policy test` and debugging). Pure. Scans all rules: not for the request path.
import type { AuthzRequest } from './authz-request.js';
import type { CompiledPolicy } from './policy/compiled-policy.js';
import type { Decision, RuleAction } from './policy/decision.js';
import { RequestContext } from './policy/request-context.js';

export interface ConditionMiss {
  /** e.g. `to.paths`. */
  readonly field: string;
  readonly expected: string;
  readonly actual: string;
}

export interface RuleTrace {
  readonly rule: string;
  readonly action: RuleAction;
  readonly matched: boolean;
  /** Empty when matched. */
  readonly misses: readonly ConditionMiss[];
}

export interface Explanation extends Decision {
  /** Every rule in file order. */
  readonly trace: readonly RuleTrace[];
}

export function explain(policy: CompiledPolicy, request: AuthzRequest): Explanation {
  const context = new RequestContext().reset(request);
  const trace = policy.rules.map((rule): RuleTrace => {
    const checks = [...rule.peerChecks, ...(rule.methodCheck === undefined ? [] : [rule.methodCheck]), ...rule.checks];
    const misses = checks
      .filter((check) => !check.test(request, context))
      .map((check) => ({ field: check.field, expected: check.expected, actual: check.actual(request, context) }));
    return { rule: rule.name, action: rule.action, matched: misses.length === 0, misses };
  });
  const deciding =
    policy.rules.find((rule, i) => rule.action === 'deny' && trace[i]?.matched) ??
    policy.rules.find((rule, i) => rule.action === 'allow' && trace[i]?.matched);
  const decision = deciding?.decision ?? policy.defaultDecision;
  return { ...decision, trace };
}
