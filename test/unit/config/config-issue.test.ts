// How every config loader words one problem (config-issue.ts), on a small schema parsed with the loaders' own error
// map: a missing key is told by the document (not by zod's wording), with what belongs there; an unknown key gets
// the allowed keys and the nearest one; a refused map key, the key schema's message; a wrong value keeps
// configIssueMessage's words; the environment's origin follows the key.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { describeConfigIssue, missingKeyWanted } from '../../../src/config/config-issue.js';
import { configIssueMessage } from '../../../src/config/issue-message.js';
import { schemaLeafPaths } from '../../../src/config/schema-keys.js';

const schema = z.strictObject({
  name: z.string(),
  port: z.number().int().min(1).max(65535),
  mode: z.enum(['allow', 'deny', 'reject']),
  paths: z.array(z.string()),
  limits: z.strictObject({ maxBytes: z.number().int().min(1) }),
  routes: z.record(z.string().regex(/^[a-z]+$/, 'expected a lower-case route name'), z.string()).optional(),
});

const VALID = { name: 'web', port: 80, mode: 'allow', paths: ['/'], limits: { maxBytes: 1 } };

function problems(data: unknown, origin?: (key: string) => string): string[] {
  const result = schema.safeParse(data, { error: configIssueMessage });
  if (result.success) return [];
  return result.error.issues.map((issue) =>
    describeConfigIssue(issue, {
      data,
      leafPaths: () => schemaLeafPaths(schema),
      reference: 'see docs/x.md',
      ...(origin === undefined ? {} : { origin }),
    }),
  );
}

describe('describeConfigIssue', () => {
  it.each([
    ['name', 'required key is missing (expected a string)'],
    ['port', 'required key is missing (expected a number)'],
    ['mode', 'required key is missing (expected allow, deny or reject)'],
    ['paths', 'required key is missing (expected a list)'],
    ['limits', 'required key is missing (expected a map)'],
  ])('fail/a missing %s says what belongs there', (key, text) => {
    const { [key as keyof typeof VALID]: _dropped, ...rest } = VALID;
    expect(problems(rest)).toEqual([`${key}: ${text}`]);
  });

  it('fail/a missing key under a list item and a map is named by its path', () => {
    expect(problems({ ...VALID, limits: {} })).toEqual([
      'limits.maxBytes: required key is missing (expected a number)',
    ]);
  });

  it('fail/a key that is there with a wrong value is not called missing: the value is described', () => {
    expect(problems({ ...VALID, name: null })).toEqual(['name: expected a string, not an empty value (null)']);
    expect(problems({ ...VALID, mode: 'alow' })).toEqual([
      'mode: expected allow, deny or reject, not the text "alow" (did you mean allow?)',
    ]);
    expect(problems({ ...VALID, port: '80' })).toEqual([
      'port: expected a whole number from 1 to 65535, not the text "80" (write it without quotes)',
    ]);
  });

  it('fail/an unknown key names the nearest allowed one and the keys allowed there', () => {
    expect(problems({ ...VALID, limits: { maxBytes: 1, maxbytes: 2 } })).toEqual([
      'limits.maxbytes (did you mean maxBytes?): unknown key; allowed here: maxBytes (see docs/x.md)',
    ]);
  });

  it("fail/a refused map key says what the key's schema expected", () => {
    expect(problems({ ...VALID, routes: { Web: 'x' } })).toEqual([
      'routes.Web: invalid key: expected a lower-case route name',
    ]);
  });

  it('fail/a document that is not a map names the top level', () => {
    expect(problems([])).toEqual(['(top level): expected a map (one "key: value" per line), not an empty list']);
  });

  it('ok/the origin follows the key, for missing and wrong values alike', () => {
    const origin = (key: string) => (key === 'name' || key === 'port' ? ' (from MESHAUTH_X)' : '');
    const { name: _name, ...rest } = VALID;
    expect(problems({ ...rest, port: 0 }, origin)).toEqual([
      'name (from MESHAUTH_X): required key is missing (expected a string)',
      'port (from MESHAUTH_X): expected a whole number from 1 to 65535, not 0',
    ]);
  });
});

describe('missingKeyWanted', () => {
  it('ok/undefined for a key present in its map, whatever zod says of its value', () => {
    const result = schema.safeParse({ ...VALID, name: undefined });
    expect(result.success).toBe(false);
    const issue = result.error?.issues[0];
    expect(issue).toBeDefined();
    // `name: undefined` as a key of the document (YAML never writes one, a caller may): present, so not "missing".
    if (issue !== undefined) expect(missingKeyWanted(issue, { ...VALID, name: undefined })).toBeUndefined();
  });
});
