// `meshauth policy test --cases` (the built CLI) refuses a malformed cases file as `policy validate` refuses a
// policy: exit 2, one stderr line per problem naming the file, the key path and what was expected, ending in the
// code. It printed a header line, then zod's own text (`Unrecognized key: "expected"`, `Invalid option: …`).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, meshauth, ROOT } from '../helpers/meshauth-cli.js';

const POLICY = 'deploy/policy.example.yaml';
const CASE =
  '  - name: frontend reads\n    from: spiffe://example.org/ns/shop/sa/frontend\n    method: GET\n    path: /\n';

describe('meshauth policy test --cases: a malformed cases file', () => {
  let dir: string;

  beforeAll(() => {
    assertBuilt(['src/authz', 'src/config', 'src/cli/policy.ts']);
    dir = mkdtempSync(join(tmpdir(), 'meshauth-policy-cases-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('fail/a wrong value: exit 2 and one line with file, key path, expectation and code', async () => {
    const cases = join(dir, 'wrong.cases.yaml');
    writeFileSync(cases, `cases:\n${CASE}    expect: allow\n${CASE}    expect: maybe\n`);
    const result = await meshauth(['policy', 'test', POLICY, '--cases', cases], { cwd: ROOT });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      `${cases}: cases[1].expect: expected allow, deny or reject, not the text "maybe" [MESHAUTH_ERR_CONFIG_INVALID]\n`,
    );
  });

  it('fail/a misspelt key: exit 2, the key missing and the key unknown, each on its line', async () => {
    const cases = join(dir, 'typo.cases.yaml');
    writeFileSync(cases, `cases:\n${CASE}    expected: allow\n`);
    const result = await meshauth(['policy', 'test', POLICY, '--cases', cases], { cwd: ROOT });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr.split('\n')).toEqual([
      `${cases}: cases[0].expect: required key is missing (expected allow, deny or reject) [MESHAUTH_ERR_CONFIG_INVALID]`,
      `${cases}: cases[0].expected (did you mean expect?): unknown key; allowed here: name, from, method, path, host, ` +
        'port, user, headers, sourceIp, chain, trustedForwarder, time, expect, rule (see docs/policy.md) [MESHAUTH_ERR_CONFIG_INVALID]',
      '',
    ]);
  });
});
