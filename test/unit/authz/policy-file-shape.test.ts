// What `policy validate` says about a policy file that is empty, not a mapping, missing a field or has a misspelt
// one: zod's "expected object, received null" and a bare `unknown field` said neither what a policy looks like nor
// what was meant.
import { describe, expect, it } from 'vitest';
import { type PolicyProblem, parsePolicy } from '../../../src/authz/policy/parse-policy.js';
import { isMeshauthError } from '../../../src/errors/index.js';

const HEAD = 'apiVersion: meshauth.dev/v1\nkind: Policy\n';

function problems(text: string): PolicyProblem[] {
  try {
    parsePolicy(text, 'p.yaml');
  } catch (error) {
    if (isMeshauthError(error, 'MESHAUTH_ERR_POLICY_INVALID')) {
      return (error.detail as { problems: PolicyProblem[] }).problems;
    }
    throw error;
  }
  throw new Error('expected the policy to be invalid');
}

describe('policy file shape', () => {
  it.each([
    ['an empty file', ''],
    ['only a comment', '# policy goes here\n'],
    ['an explicit null', '~\n'],
  ])('fail/%s says the file is empty and what a policy holds', (_name, text) => {
    expect(problems(text)).toEqual([
      {
        rule: '',
        field: '',
        message: 'the file is empty: expected a policy with apiVersion: meshauth.dev/v1, kind: Policy and rules',
      },
    ]);
  });

  it.each([
    ['a list', '- name: r\n', 'a list'],
    ['a scalar', 'allow everything\n', 'a string'],
  ])('fail/%s at the top level says a mapping is expected', (_name, text, kind) => {
    expect(problems(text)).toEqual([
      {
        rule: '',
        field: '',
        message: `expected a mapping with apiVersion: meshauth.dev/v1, kind: Policy and rules at the top level, not ${kind}`,
      },
    ]);
  });

  it.each([
    ['misspelt', 'alow', 'expected allow or deny, not the text "alow" (did you mean allow?)'],
    ['not close to either', 'permit', 'expected allow or deny, not the text "permit"'],
  ])('fail/an action %s says the two allowed and what was written', (_name, action, message) => {
    expect(problems(`${HEAD}rules: [{ name: r, action: ${action} }]\n`)).toEqual([
      { rule: 'rules[0] "r"', field: 'action', message },
    ]);
  });

  it('fail/a missing field is named as missing', () => {
    expect(problems(HEAD)).toEqual([
      { rule: '', field: 'rules', message: 'required field is missing (expected a list)' },
    ]);
  });

  it.each([
    ['top level', `${HEAD}rulez: []\n`, '', '', '"rulez" (did you mean "rules"?)'],
    [
      'from',
      `${HEAD}rules: [{ name: r, action: allow, from: { namespace: [shop] } }]\n`,
      'rules[0] "r"',
      'from',
      '"namespace" (did you mean "namespaces"?)',
    ],
    [
      'a time window in a list',
      `${HEAD}rules: [{ name: r, action: allow, when: { time: [{ from: "09:00", to: "17:00", timezone: UTC }] } }]\n`,
      'rules[0] "r"',
      'when.time[0]',
      '"timezone" (did you mean "timeZone"?)',
    ],
    [
      'when.user',
      `${HEAD}rules: [{ name: r, action: allow, when: { user: { scopes: [a] } } }]\n`,
      'rules[0] "r"',
      'when.user',
      '"scopes" (did you mean "scope"?)',
    ],
  ])('fail/an unknown field in %s gets a suggestion', (_name, text, rule, field, named) => {
    expect(problems(text)).toContainEqual({ rule, field, message: `unknown field ${named}` });
  });

  it('fail/an unknown field nothing is close to gets none', () => {
    expect(problems(`${HEAD}rules: []\nfrobnicate: 1\n`)).toEqual([
      { rule: '', field: '', message: 'unknown field "frobnicate"' },
    ]);
  });

  it('fail/exposeRuleNames given as text says true or false', () => {
    expect(problems(`${HEAD}exposeRuleNames: "yes"\nrules: []\n`)).toEqual([
      { rule: '', field: 'exposeRuleNames', message: 'expected true or false, not the text "yes"' },
    ]);
  });
});
