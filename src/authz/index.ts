export {
  type AuthzHeaders,
  type AuthzRequest,
  type AuthzUser,
  headerValues,
  type MeshAuthzRequest,
} from './authz-request.js';
export { decide } from './decide.js';
export { type ConditionMiss, type Explanation, explain, type RuleTrace } from './decide-explain.js';
export { ambiguousPathAuditRecord, type DenyAuditRecord, denyAuditRecord } from './deny-audit-record.js';
export { evaluateTestRequest, type TestOutcome, type TestRequestInput } from './evaluate-test-request.js';
export { isHostPort } from './host-validate.js';
export { compilePolicyText, type LoadedPolicy, loadPolicyFile, MAX_POLICY_BYTES } from './load-policy-file.js';
export { decideWithMethodOverride, type OverrideDecision } from './method-override.js';
export { isForwardedMethod, validateMethod } from './method-validate.js';
export { type NormalizedTarget, normalizePath, type PathRejectReason } from './path-normalize.js';
export { compilePolicy } from './policy/compile-policy.js';
export { CompiledPolicy } from './policy/compiled-policy.js';
export type { Decision, PolicyMode, RuleAction } from './policy/decision.js';
export { normalizeHost } from './policy/match-host.js';
export { cutAtEscapedDelimiter, pathMatchForm } from './policy/match-path.js';
export { formatProblem, type PolicyProblem, parsePolicy } from './policy/parse-policy.js';
export {
  AMBIGUOUS_PATH_RULE,
  DEFAULT_DENY_RULE,
  EDGE_LOGIN_RULES,
  EDGE_REFUSAL_RULES,
  EDGE_REQUIREMENT_RULES,
  EDGE_RULES,
  type EdgeRefusalRule,
  isEdgeRefusalRule,
  RESERVED_RULES,
  type ReservedRule,
  reservedRule,
  TCP_POLICY_INVALID_RULE,
} from './policy/reserved-rules.js';
export type { PolicyDocument, PolicyRule } from './policy/schema.js';
export { type CaseResult, type PolicyCase, parseCases, runCases } from './policy-cases.js';
export { PolicyWatcher, type PolicyWatcherOptions } from './policy-watcher.js';
