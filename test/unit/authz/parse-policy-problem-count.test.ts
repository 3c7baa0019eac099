// A refused policy lists its first 20 problems and counts the rest, in the message (the log line of a refused
// reload) and in detail.problems (what `policy validate` prints). Review follow-up: a 1 MiB policy that was one flat
// list of 520,000 items made a 38 MB error message and log line, one problem per item.
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../../src/authz/policy/parse-policy.js';
import { isMeshauthError, type MeshauthError } from '../../../src/errors/index.js';
import { POLICY_HEAD } from '../../helpers/policy-problems.js';

function refusal(text: string): MeshauthError {
  try {
    parsePolicy(text, 'p.yaml');
  } catch (error) {
    if (isMeshauthError(error, 'MESHAUTH_ERR_POLICY_INVALID')) return error;
    throw error;
  }
  throw new Error('expected the policy to be invalid');
}

const RULE_NOT_A_MAP = 'expected a map (one "key: value" per line), not 1';

describe('parsePolicy: how many problems a refusal lists', () => {
  it('fail/a list of 5,000 invalid rules → 20 problems and "(4980 more problems)"', () => {
    const error = refusal(`${POLICY_HEAD}rules: [${'1,'.repeat(4_999)}1]\n`);
    const lines = error.message.split('\n');
    expect(lines).toHaveLength(1 + 21);
    expect(lines[1]).toBe(`  p.yaml: rules[0]: ${RULE_NOT_A_MAP}`);
    expect(lines[20]).toBe(`  p.yaml: rules[19]: ${RULE_NOT_A_MAP}`);
    expect(lines[21]).toBe('  p.yaml: (4980 more problems)');
    expect(error.detail?.problems).toHaveLength(21);
    expect(error.detail?.omitted).toBe(4_980);
  });

  it('fail/the bound holds for YAML problems too (duplicate keys)', () => {
    const keys = Array.from({ length: 30 }, () => '  a: 1\n').join('');
    const error = refusal(`${POLICY_HEAD}rules: []\nextra:\n${keys}`);
    expect(error.message.split('\n')).toHaveLength(1 + 21);
    expect(error.message).toContain('p.yaml: (9 more problems)');
  });

  it('ok/20 problems are listed whole, without a count', () => {
    const error = refusal(`${POLICY_HEAD}rules: [${'1,'.repeat(19)}1]\n`);
    expect(error.message.split('\n')).toHaveLength(1 + 20);
    expect(error.message).not.toContain('more problem');
    expect(error.detail?.omitted).toBeUndefined();
  });
});
