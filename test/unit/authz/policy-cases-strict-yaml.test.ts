// A `policy test --cases` file is read by the policy's strict YAML rules (config/yaml-text.ts): nesting past 64
// levels is one problem with its line, YAML 1.1 tags are unresolved tags, and at most 20 problems are listed.
// Review follow-up: the cases file still went through yaml's parseDocument, which recursed over any depth (a deep
// file overflowed the stack: `YAML: Maximum call stack size exceeded`, or held `policy test` for seconds), loaded
// `!!binary` as a Buffer and `!!set` as a Set (refused later as "expected a string"), and listed every one of a
// large file's problems. More than 100 aliases are one problem too (review finding: yaml resolves each alias by a
// scan, so 1 MiB of anchors and aliases took about a minute).
import { describe, expect, it } from 'vitest';
import { parseCases } from '../../../src/authz/policy-cases.js';
import { isMeshauthError } from '../../../src/errors/index.js';

const TOO_DEEP = 'nested deeper than 64 levels: expected at most 64 maps and lists inside each other';
const CASE = '  - { name: a, from: spiffe://example.org/a, method: GET, path: /, expect: allow }\n';

function problemLines(text: string): string[] {
  try {
    parseCases(text, 'cases.yaml');
  } catch (error) {
    if (isMeshauthError(error, 'MESHAUTH_ERR_CONFIG_INVALID')) return error.message.split('\n').slice(1);
    throw error;
  }
  throw new Error('expected the cases file to be invalid');
}

describe('parseCases: strict YAML', () => {
  it('fail/a case nested 65 deep → one problem: its line and the bound', () => {
    // The document's map, cases, the case and `user` are 4 levels: 61 lists more make 65.
    const deep = `${'['.repeat(61)}${']'.repeat(61)}`;
    const text = `cases:\n${CASE}  - { name: b, from: x, method: GET, path: /, expect: deny, user: { g: ${deep} } }\n`;
    expect(problemLines(text)).toEqual([`  cases.yaml: YAML line 3: ${TOO_DEEP}`]);
  });

  it('fail/512 KiB of "[" → the same one problem, without recursing', () => {
    const text = `${'['.repeat(256 * 1024)}${']'.repeat(256 * 1024)}`;
    expect(problemLines(text)).toEqual([`  cases.yaml: YAML line 1: ${TOO_DEEP}`]);
  });

  for (const tag of ['!!binary aGVsbG8=', '!!set { a, b }', '!!timestamp 2026-12-05']) {
    it(`fail/${tag.split(' ')[0]} → an unresolved tag with its line`, () => {
      const lines = problemLines(`cases:\n${CASE}  - { name: b, from: x, method: GET, path: ${tag}, expect: deny }\n`);
      expect(lines[0]).toMatch(/^ {2}cases\.yaml: YAML line 3: Unresolved tag: tag:yaml\.org,2002:/);
    });
  }

  it('fail/101 aliases → one problem: the line of the 101st', () => {
    const pairs = Array.from(
      { length: 101 },
      (_, i) => `  - &c${i} { name: c${i}, from: x, method: GET, path: /, expect: deny }\n  - *c${i}\n`,
    );
    expect(problemLines(`cases:\n${pairs.join('')}`)).toEqual([
      '  cases.yaml: YAML line 203: more than 100 aliases (*name): expected at most 100 in one document',
    ]);
  });

  it('fail/a duplicate key → its line', () => {
    expect(problemLines('cases:\n  - name: a\n    name: b\n')).toEqual([
      '  cases.yaml: YAML line 3: Map keys must be unique',
    ]);
  });

  it('fail/1,000 invalid cases → the first 20 problems and a count of the rest', () => {
    const lines = problemLines(`cases: [${'1, '.repeat(999)}1]\n`);
    expect(lines).toHaveLength(21);
    expect(lines[0]).toBe('  cases.yaml: cases[0]: expected a map (one "key: value" per line), not 1');
    expect(lines[20]).toBe('  cases.yaml: (980 more problems)');
  });

  it('ok/a case at depth 64 and 20 problems are listed whole', () => {
    const lines = problemLines(`cases: [${'1, '.repeat(19)}1]\n`);
    expect(lines).toHaveLength(20);
    const deep = `${'['.repeat(60)}${']'.repeat(60)}`;
    const text = `cases:\n  - { name: a, from: x, method: GET, path: /, expect: deny, user: { g: ${deep} } }\n`;
    expect(parseCases(text, 'cases.yaml')).toHaveLength(1);
  });
});
