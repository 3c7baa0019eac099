// A cases table given to `policy validate` by mistake: the schema problems stay, and one hint line says what the
// file looks like and how to run it (four "unknown field" / "required field" lines said neither).
import { describe, expect, it } from 'vitest';
import { type PolicyProblem, parsePolicy } from '../../../src/authz/policy/parse-policy.js';
import { isMeshauthError } from '../../../src/errors/index.js';

const HEAD = 'apiVersion: meshauth.dev/v1\nkind: Policy\n';

describe('a cases file validated as a policy', () => {
  const CASES = 'cases:\n  - name: x\n    from: spiffe://example.org/ns/a/sa/b\n    path: /\n    expect: allow\n';

  function failure(text: string): { message: string; detail: Record<string, unknown> } {
    try {
      parsePolicy(text, 'p.cases.yaml');
    } catch (error) {
      expect(isMeshauthError(error, 'MESHAUTH_ERR_POLICY_INVALID')).toBe(true);
      return error as { message: string; detail: Record<string, unknown> };
    }
    throw new Error('expected the policy to be invalid');
  }

  it('fail/keeps every schema problem and adds one hint naming `policy test --cases`', () => {
    const error = failure(CASES);
    const found = error.detail.problems as PolicyProblem[];
    expect(found.map((p) => p.field)).toEqual(['apiVersion', 'kind', 'rules', '']);
    expect(found[3]?.message).toBe('unknown field "cases"');
    const hint = 'this looks like a cases file: run it with `meshauth policy test <policy file> --cases p.cases.yaml`';
    expect(error.detail.hint).toBe(hint);
    expect(error.message.endsWith(`\n  p.cases.yaml: hint: ${hint}`)).toBe(true);
    expect(error.message.split('hint:')).toHaveLength(2);
  });

  it('fail/an invalid policy without a `cases` key has no hint', () => {
    const error = failure(`${HEAD}rules: [{ name: r, action: permit }]\n`);
    expect(error.detail.hint).toBeUndefined();
    expect(error.message).not.toContain('hint:');
  });
});
