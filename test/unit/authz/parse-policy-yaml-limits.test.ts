// A policy's YAML is read by the config files' strict rules (config/yaml-text.ts): nesting past 64 levels is one
// problem naming its line and the bound, and the YAML 1.1 tags yaml used to resolve (!!binary, !!set, !!timestamp)
// are unresolved tags with their line. Review findings: a policy nested a few thousand deep overflowed the stack
// ("YAML line 1: Maximum call stack size exceeded"; on Node 20 the second such file aborted `policy validate`,
// exit 134), 4 MB of it held one synchronous parse for over 20 s; a `!!binary` value became a Buffer that the schema
// then refused with a generic "expected a string". More than 100 aliases are one problem too: 1 MiB of anchors and
// aliases (under the size bound) held a reload's parse on the event loop for over a minute.
import { describe, expect, it } from 'vitest';
import { compilePolicyText } from '../../../src/authz/load-policy-file.js';
import { POLICY_HEAD, policyProblems } from '../../helpers/policy-problems.js';

const TOO_DEEP = 'nested deeper than 64 levels: expected at most 64 maps and lists inside each other';
const TOO_MANY_ALIASES = 'more than 100 aliases (*name): expected at most 100 in one document';

/** `2n` rules in pairs, the second allowing the paths the first anchors; rule I (from 0) on line 4 + I. */
function rulesSharingPaths(n: number): string {
  const rules = Array.from({ length: 2 * n }, (_, i) =>
    i % 2 === 0
      ? `  - { name: r${i}, action: allow, to: { paths: &p${i} ["/${i}"] } }`
      : `  - { name: r${i}, action: allow, to: { paths: *p${i - 1} } }`,
  );
  return `${POLICY_HEAD}rules:\n${rules.join('\n')}\n`;
}

describe('parsePolicy: nesting depth', () => {
  it('fail/a rule condition at depth 65 → one problem: its line and the bound', () => {
    // The document's map, rules, the rule and `to` are 4 levels: 61 lists more make 65.
    const deep = `${'['.repeat(61)}${']'.repeat(61)}`;
    const text = `${POLICY_HEAD}rules:\n  - name: a\n    action: allow\n    to: { paths: ${deep} }\n`;
    expect(policyProblems(text)).toEqual([{ rule: '', field: '', message: `YAML line 6: ${TOO_DEEP}` }]);
  });

  it('fail/1 MiB of "[" twice in one process: the same one problem both times', () => {
    const text = `${'['.repeat(512 * 1024)}${']'.repeat(512 * 1024)}`;
    const expected = [{ rule: '', field: '', message: `YAML line 1: ${TOO_DEEP}` }];
    expect(policyProblems(text)).toEqual(expected);
    expect(policyProblems(`${text}\n`)).toEqual(expected);
  });

  it('ok/depth 64: the bound itself is not refused by the nesting check', () => {
    const deep = `${'['.repeat(60)}${']'.repeat(60)}`;
    const text = `${POLICY_HEAD}rules: [ { name: a, action: allow, to: { paths: ${deep} } } ]\n`;
    expect(policyProblems(text).some((p) => p.message.includes('nested deeper'))).toBe(false);
  });
});

describe('parsePolicy: aliases', () => {
  it('ok/100 pairs of rules sharing paths: 100 aliases are read', () => {
    const { rules } = compilePolicyText(rulesSharingPaths(100), 'p.yaml').document;
    expect(rules).toHaveLength(200);
    expect(rules[199]?.to?.paths).toEqual(['/198']);
  });

  it('fail/101 pairs: 101 aliases → one problem, the line of the 101st', () => {
    expect(policyProblems(rulesSharingPaths(101))).toEqual([
      { rule: '', field: '', message: `YAML line 205: ${TOO_MANY_ALIASES}` },
    ]);
  });
});

describe('parsePolicy: YAML 1.1 tags are unresolved tags', () => {
  for (const [tag, value] of [
    ['!!binary', 'aGVsbG8='],
    ['!!set', '{x, y}'],
    ['!!timestamp', '2001-12-14'],
  ] as const) {
    it(`fail/${tag} in a policy → "YAML line 3: Unresolved tag"`, () => {
      const problems = policyProblems(`${POLICY_HEAD}mode: ${tag} ${value}\nrules: []\n`);
      expect(problems[0]?.message).toMatch(/^YAML line 3: Unresolved tag: tag:yaml\.org,2002:/);
    });
  }
});
