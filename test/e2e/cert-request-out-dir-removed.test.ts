// `cert request` makes the directory of --out before it calls the CA (the lock and the write probe go in it). When
// the request then failed, the empty directories it had made stayed behind. They are removed now, deepest first and
// only while empty; a directory that was there before is never removed.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, meshauth, type RunningCli, serveCa } from '../helpers/meshauth-cli.js';

let cwd: string;
let serve: RunningCli;
let url: string;

beforeAll(async () => {
  assertBuilt(['src/cli', 'src/ca', 'src/agent']);
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-out-dir-removed-'));
  const init = await meshauth(['ca', 'init', '--trust-domain', 'example.org'], { cwd });
  expect(init.code, init.stderr).toBe(0);
  ({ serve, url } = await serveCa(cwd));
  // A token the CA never issued: the request fails at the CA, after --out was made.
  writeFileSync(join(cwd, 'unknown.token'), 'A'.repeat(43), { mode: 0o600 });
});
afterAll(async () => {
  await serve?.stop();
  if (cwd !== undefined) rmSync(cwd, { recursive: true, force: true });
});

async function refusedRequest(out: string): Promise<void> {
  const result = await meshauth(
    ['cert', 'request', '--ca-url', url, '--bundle', 'certs/bundle.pem', '--token-file', 'unknown.token', '--out', out],
    { cwd },
  );
  expect(result.code, result.stderr).toBe(2);
  expect(result.stdout).toBe('');
  expect(result.stderr).toMatch(/credential rejected.*\[MESHAUTH_ERR_CA_UNAUTHENTICATED\]\n$/);
}

describe('cert request refused by the CA', () => {
  it('fail/the directories it made for --out are removed', async () => {
    await refusedRequest('made/for/web');
    expect(existsSync(join(cwd, 'made'))).toBe(false);
  });

  it('fail/a directory that was there before stays, with what it held; only the ones made under it go', async () => {
    mkdirSync(join(cwd, 'kept'));
    writeFileSync(join(cwd, 'kept/app.conf'), 'x\n');
    await refusedRequest('kept/new/web');
    expect(readdirSync(join(cwd, 'kept'))).toEqual(['app.conf']);
  });

  it('fail/an empty directory that was there before stays', async () => {
    mkdirSync(join(cwd, 'empty'));
    await refusedRequest('empty/web');
    expect(readdirSync(join(cwd, 'empty'))).toEqual([]);
  });
});
