// A `policy test --cases` file that is empty or not a mapping: the message said `cases.yaml: : Invalid input…`,
// an empty key path and zod's wording.
import { describe, expect, it } from 'vitest';
import { parseCases } from '../../../src/authz/policy-cases.js';
import { isMeshauthError } from '../../../src/errors/index.js';

function messageOf(text: string): string {
  try {
    parseCases(text, 'cases.yaml');
  } catch (error) {
    if (isMeshauthError(error, 'MESHAUTH_ERR_CONFIG_INVALID')) return error.message;
    throw error;
  }
  throw new Error('expected the cases file to be invalid');
}

describe('cases file shape', () => {
  it.each([
    ['an empty file', ''],
    ['only a comment', '# none yet\n'],
  ])('fail/%s says so', (_name, text) => {
    expect(messageOf(text)).toBe(
      'invalid cases file cases.yaml:\n  cases.yaml: the file is empty: expected `cases:` with a list of cases',
    );
  });

  it('fail/a list at the top level names the top level, not an empty key', () => {
    const message = messageOf('- name: a\n');
    expect(message).toContain('cases.yaml: (top level): ');
    expect(message).not.toContain('cases.yaml: : ');
  });

  it('fail/a nested problem still names its key', () => {
    expect(messageOf('cases:\n  - name: a\n    from: x\n    method: GET\n    path: /\n    expect: maybe\n')).toContain(
      'cases.yaml: cases[0].expect: ',
    );
  });
});
