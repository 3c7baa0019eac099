// `meshauth ca init` into an existing --dir that others may write is refused, and the directory is left as it was:
// whoever can rename files there can put their own root into bundle.pem (what `ca serve` gives every agent) or their
// own intermediate beside it. A 0777 directory used to take the CA without a word.
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, meshauth } from '../helpers/meshauth-cli.js';

let cwd: string;
beforeAll(() => {
  assertBuilt(['src/cli']);
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-ca-shared-'));
});
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

/** A new directory under cwd with exactly `mode` (mkdir's mode is narrowed by the umask). */
function directory(name: string, mode: number): string {
  mkdirSync(join(cwd, name));
  chmodSync(join(cwd, name), mode);
  return name;
}

describe('ca init into a directory others may write', () => {
  it.each([
    ['writable by everyone', 0o777, 'everyone (mode 0777)', []],
    ['writable by its group', 0o775, 'its group (mode 0775)', []],
    ['sticky, like /tmp', 0o1777, 'everyone (mode 01777)', []],
    ['with --k8s-secret', 0o777, 'everyone (mode 0777)', ['--k8s-secret', 'meshauth-ca', '--namespace', 'meshauth']],
  ])('fail/%s → exit 2, one line naming the directory; nothing written, mode kept', async (name, mode, who, extra) => {
    const dir = directory(name.replace(/\W+/g, '-'), mode);
    const result = await meshauth(['ca', 'init', '--trust-domain', 'example.org', '--dir', dir, ...extra], { cwd });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        new RegExp(
          `^meshauth: cannot create a CA in ${dir}: the directory is writable by ${who.replace(/[()]/g, '\\$&')}.*chmod go-w ${dir}.*\\[MESHAUTH_ERR_FILE_UNWRITABLE\\]$`,
        ),
      ),
    ]);
    expect(readdirSync(join(cwd, dir))).toEqual([]);
    expect(statSync(join(cwd, dir)).mode & 0o7777).toBe(mode);
  });

  it('ok/an existing directory only its owner writes (0755) takes the CA', async () => {
    const dir = directory('owner-only', 0o755);
    const result = await meshauth(['ca', 'init', '--trust-domain', 'example.org', '--dir', dir], { cwd });
    expect(result.code, result.stderr).toBe(0);
    expect(readdirSync(join(cwd, dir))).toContain('root.key');
  });
});
