// `ca issue --out DIR/PREFIX` makes the missing directories of DIR before it writes the pair. When the write then
// failed (a full disk, a lock it could not take), the empty directories it had made stayed behind, where a failed
// `cert request` removes its own. They are removed now, deepest first and only while empty; a directory that was
// there before is never removed.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, type CliResult, MAIN, meshauth } from '../helpers/meshauth-cli.js';

const ID = 'spiffe://example.org/ns/shop/sa/web';
let cwd: string;

beforeAll(async () => {
  assertBuilt(['src/cli', 'src/ca']);
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-issue-out-dir-removed-'));
  const init = await meshauth(['ca', 'init', '--trust-domain', 'example.org'], { cwd });
  expect(init.code, init.stderr).toBe(0);
});
afterAll(() => {
  if (cwd !== undefined) rmSync(cwd, { recursive: true, force: true });
});

/**
 * `ca issue --out out` with no file larger than 512 bytes (sh's `ulimit -f` counts 512-byte blocks), as on a full
 * disk: the locks and the key fit, the chain does not. Node ignores SIGXFSZ, so the write fails with EFBIG.
 */
function issueOnFullDisk(out: string): Promise<CliResult> {
  const args = ['-c', 'ulimit -f 1 && exec "$0" "$@"', process.execPath, MAIN, 'ca', 'issue', '--id', ID];
  return new Promise((resolve) => {
    execFile('/bin/sh', [...args, '--out', out], { cwd, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

function expectFullDisk(result: CliResult, out: string): void {
  expect(result.code, result.stderr).toBe(1);
  expect(result.stdout).toBe('');
  expect(result.stderr).toBe(`meshauth: cannot write ${out}.crt: EFBIG (write) [MESHAUTH_ERR_FILE_UNWRITABLE]\n`);
}

describe('ca issue that fails to write the pair', () => {
  it('fail/on a full disk, the directories it made for --out are removed', async () => {
    expectFullDisk(await issueOnFullDisk('made/for/web'), 'made/for/web');
    expect(existsSync(join(cwd, 'made'))).toBe(false);
  });

  it('fail/when the lock cannot be taken, the directories it made for --out are removed', async () => {
    // web.key fits in a file name (at most 255 bytes), its lock web.key.lock does not.
    const out = `locked/${'w'.repeat(250)}`;
    const result = await meshauth(['ca', 'issue', '--id', ID, '--out', out], { cwd });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toMatch(
      /^meshauth: cannot write .*: ENAMETOOLONG \(link\) \[MESHAUTH_ERR_FILE_UNWRITABLE\]\n$/,
    );
    expect(existsSync(join(cwd, 'locked'))).toBe(false);
  });

  it('fail/a directory that was there before stays, with what it held; only the ones made under it go', async () => {
    mkdirSync(join(cwd, 'kept'));
    writeFileSync(join(cwd, 'kept/app.conf'), 'x\n');
    expectFullDisk(await issueOnFullDisk('kept/new/web'), 'kept/new/web');
    expect(readdirSync(join(cwd, 'kept'))).toEqual(['app.conf']);
  });

  it('fail/an empty directory that was there before stays', async () => {
    mkdirSync(join(cwd, 'empty'));
    expectFullDisk(await issueOnFullDisk('empty/web'), 'empty/web');
    expect(readdirSync(join(cwd, 'empty'))).toEqual([]);
  });
});
