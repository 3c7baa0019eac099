// `ca issue --ttl` and `ca token create --ttl` out of range are refused in the words typed: `--ttl 0s` came back as
// "--ttl 0ms", a value the user never wrote.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, meshauth } from '../helpers/meshauth-cli.js';

let cwd: string;
beforeAll(async () => {
  assertBuilt(['src/cli']);
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-ttl-typed-'));
  expect((await meshauth(['ca', 'init', '--trust-domain', 'example.org'], { cwd })).code).toBe(0);
});
afterAll(() => {
  if (cwd !== undefined) rmSync(cwd, { recursive: true, force: true });
});

describe('--ttl out of range', () => {
  it.each([
    ['ca issue --ttl 0s', ['ca', 'issue', '--ttl', '0s'], '--ttl 0s', '1m and 24h'],
    ['ca issue --ttl 90000s', ['ca', 'issue', '--ttl', '90000s'], '--ttl 90000s', '1m and 24h'],
    ['ca token create --ttl 0s', ['ca', 'token', 'create', '--ttl', '0s'], '--ttl 0s', '1m and 7d'],
  ])('fail/%s → exit 2, the value as typed', async (_name, args, typed, bounds) => {
    const result = await meshauth([...args, '--id', 'spiffe://example.org/ns/a/sa/b'], { cwd });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      `meshauth: ${typed} is out of range: must be between ${bounds} [MESHAUTH_ERR_TTL_OUT_OF_RANGE]\n`,
    );
  });

  it('fail/ca serve --svid-ttl 0s → exit 2, the value as typed (the serve flags share the check)', async () => {
    const result = await meshauth(['ca', 'serve', '--listen', '127.0.0.1:0', '--svid-ttl', '0s'], { cwd });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toBe(
      'meshauth: --svid-ttl 0s is out of range: must be between 5s and 24h [MESHAUTH_ERR_TTL_OUT_OF_RANGE]\n',
    );
  });
});
