// A malformed `policy test --cases` file is refused in the config loaders' words: the file, the key path
// (`cases[3].expect`) and what was expected. A missing key, an unknown key, a bad `time` and a header value of
// neither shape read as zod's own text: `Invalid option: expected one of "allow"|"deny"|"reject"`,
// `Unrecognized key: "expected"`, `Invalid ISO datetime`, `Invalid input`.
import { describe, expect, it } from 'vitest';
import { parseCases } from '../../../src/authz/policy-cases.js';
import { isMeshauthError } from '../../../src/errors/index.js';

const CASE = '  - name: a\n    from: spiffe://example.org/a\n    method: GET\n    path: /\n';
const ALLOWED =
  'name, from, method, path, host, port, user, headers, sourceIp, chain, trustedForwarder, time, expect, rule';

/** The refusal's problem lines (`detail.problems`, which the CLI prints), after checking its code and message. */
function problems(text: string): readonly string[] {
  try {
    parseCases(text, 'cases.yaml');
  } catch (error) {
    if (!isMeshauthError(error, 'MESHAUTH_ERR_CONFIG_INVALID')) throw error;
    const lines = error.detail?.problems as readonly string[];
    expect(error.message).toBe(`invalid cases file cases.yaml:\n  ${lines.join('\n  ')}`);
    return lines;
  }
  throw new Error('expected the cases file to be invalid');
}

describe('cases file problems: file, key path and what was expected', () => {
  it.each([
    [
      'wrong type',
      `cases:\n${CASE}    expect: 3\n`,
      ['cases.yaml: cases[0].expect: expected allow, deny or reject, not 3'],
    ],
    [
      'misspelt value',
      `cases:\n${CASE}    expect: alow\n`,
      ['cases.yaml: cases[0].expect: expected allow, deny or reject, not the text "alow" (did you mean allow?)'],
    ],
    [
      'missing expect',
      `cases:\n${CASE}`,
      ['cases.yaml: cases[0].expect: required key is missing (expected allow, deny or reject)'],
    ],
    [
      'missing strings, in the fourth case',
      `cases:\n${CASE}    expect: allow\n${CASE}    expect: deny\n${CASE}    expect: deny\n  - { name: d, expect: deny }\n`,
      [
        'cases.yaml: cases[3].from: required key is missing (expected a string)',
        'cases.yaml: cases[3].method: required key is missing (expected a string)',
        'cases.yaml: cases[3].path: required key is missing (expected a string)',
      ],
    ],
    [
      'unknown key',
      `cases:\n${CASE}    expect: allow\n    expected: allow\n`,
      [
        `cases.yaml: cases[0].expected (did you mean expect?): unknown key; allowed here: ${ALLOWED} (see docs/policy.md)`,
      ],
    ],
    [
      'misspelt top-level key',
      'case: []\n',
      [
        'cases.yaml: cases: required key is missing (expected a list)',
        'cases.yaml: case (did you mean cases?): unknown key; allowed here: cases (see docs/policy.md)',
      ],
    ],
    [
      'time that is no ISO 8601 time',
      `cases:\n${CASE}    expect: allow\n    time: yesterday\n`,
      ['cases.yaml: cases[0].time: expected an ISO 8601 time with its UTC offset, e.g. 2026-01-05T09:00:00Z'],
    ],
    [
      'header value of neither shape',
      `cases:\n${CASE}    expect: allow\n    headers: { x-tenant: 3 }\n`,
      ['cases.yaml: cases[0].headers["x-tenant"]: expected a string or a list of strings'],
    ],
    [
      'port out of range',
      `cases:\n${CASE}    expect: allow\n    port: 99999\n`,
      ['cases.yaml: cases[0].port: expected a number from 0 to 65535, not 99999'],
    ],
  ])('fail/%s', (_name, text, expected) => {
    expect(problems(text)).toEqual(expected);
  });

  it('ok/no problem line carries zod wording', () => {
    const lines = problems(`cases:\n  - { name: a, expect: allow, expected: 1, time: x, headers: { h: 3 } }\n`);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      expect(line).toMatch(/^cases\.yaml: cases\[0\]/);
      expect(line).not.toMatch(/Invalid (input|option|ISO)|Unrecognized key|received undefined/);
    }
  });
});
