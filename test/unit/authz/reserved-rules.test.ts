// Rule names meshauth writes for its own decisions are refused as user rule names, each saying what it stands for:
// a user rule called `path-normalization` or `no-route` made audit lines and decision metrics ambiguous.
import { describe, expect, it } from 'vitest';
import {
  AMBIGUOUS_PATH_RULE,
  DEFAULT_DENY_RULE,
  EDGE_LOGIN_RULES,
  EDGE_REFUSAL_RULES,
  EDGE_REQUIREMENT_RULES,
  EDGE_RULES,
  RESERVED_RULES,
  reservedRule,
  TCP_POLICY_INVALID_RULE,
} from '../../../src/authz/index.js';
import { parsePolicy } from '../../../src/authz/policy/parse-policy.js';
import { RULE_NAME } from '../../../src/authz/policy/schema.js';
import { policyProblems } from '../../helpers/policy-problems.js';

const HEAD = 'apiVersion: meshauth.dev/v1\nkind: Policy\n';

describe('reserved rule names', () => {
  it('ok/the list holds every name the product decides under, once', () => {
    const names = RESERVED_RULES.map((r) => r.name);
    const exported = [
      DEFAULT_DENY_RULE,
      AMBIGUOUS_PATH_RULE,
      TCP_POLICY_INVALID_RULE,
      ...Object.values(EDGE_RULES),
      ...Object.values(EDGE_REQUIREMENT_RULES),
      ...Object.values(EDGE_LOGIN_RULES),
      ...Object.keys(EDGE_REFUSAL_RULES),
    ];
    expect([...names].sort()).toEqual([...exported].sort());
    expect(new Set(names).size).toBe(names.length);
    // A name a policy could not spell anyway would need no reservation: every one is a valid rule name.
    for (const name of names) expect(name).toMatch(RULE_NAME);
  });

  it.each(RESERVED_RULES.map((r) => [r.name, r.decision] as const))(
    'fail/a user rule named %s is refused, saying what meshauth decides under it',
    (name, decision) => {
      expect(policyProblems(`${HEAD}rules: [{ name: ${name}, action: allow }]\n`)).toEqual([
        {
          rule: `rules[0] "${name}"`,
          field: 'name',
          message: `"${name}" is reserved (meshauth's name for ${decision}): a rule of that name would be mistaken for it in audit lines and metrics`,
        },
      ]);
    },
  );

  it.each([
    ['ok/another case', 'No-Route'],
    ['ok/a longer name', 'path-normalization-v2'],
    ['ok/a prefix', 'route-'],
  ])('%s of a reserved name is free: %s', (_name, name) => {
    expect(reservedRule(name)).toBeUndefined();
    expect(parsePolicy(`${HEAD}rules: [{ name: ${name}, action: allow }]\n`, 'p.yaml').rules[0]?.name).toBe(name);
  });
});
