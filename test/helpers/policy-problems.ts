// What parsePolicy refuses in a policy text: its problems, after checking the refusal is MESHAUTH_ERR_POLICY_INVALID.
import { expect } from 'vitest';
import { type PolicyProblem, parsePolicy } from '../../src/authz/policy/parse-policy.js';
import { isMeshauthError } from '../../src/errors/index.js';

export const POLICY_HEAD = 'apiVersion: meshauth.dev/v1\nkind: Policy\n';

export function policyProblems(text: string, trustDomain?: string): PolicyProblem[] {
  try {
    parsePolicy(text, 'p.yaml', trustDomain);
  } catch (error) {
    expect(isMeshauthError(error, 'MESHAUTH_ERR_POLICY_INVALID')).toBe(true);
    return (error as { detail: { problems: PolicyProblem[] } }).detail.problems;
  }
  throw new Error('expected the policy to be invalid');
}
