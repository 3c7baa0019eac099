// `meshauth inject --config PATH` (and `webhook --config`, which loads it the same way) where PATH is not a config
// file: refused at once with exit 2 naming it, as `meshauth sidecar --config` refuses it. The file was read with a bare
// readFileSync: a FIFO without a writer blocked the command for ever, a directory printed the raw EISDIR and
// /dev/zero was read until the process ran out of memory.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, MAIN } from '../helpers/meshauth-cli.js';
import { runCommand } from '../helpers/sidecar-harness.js';
import { ENDLESS_DEVICE, fifoIn } from '../helpers/special-files.js';

const MANIFEST = new URL('../fixtures/k8s/daemonset.yaml', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'meshauth-e2e-inject-config-kind-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(() => assertBuilt(['src/config', 'src/cli', 'src/platform']));

/** `meshauth inject --config file -f manifest`, killed after 10 s (the blocked read it used to be). */
const inject = (config: string) =>
  runCommand(process.execPath, [MAIN, 'inject', '--config', config, '-f', MANIFEST], { timeoutMs: 10_000 });

describe('meshauth inject --config naming something other than a config file', () => {
  it.each([
    ['a FIFO with no writer', () => fifoIn(dir, 'inject.yaml')],
    [
      'a directory',
      () => {
        const path = join(dir, 'inject.d');
        mkdirSync(path);
        return path;
      },
    ],
    ['a device without end', () => ENDLESS_DEVICE],
  ])('fail/%s → exit 2 at once, MESHAUTH_ERR_FILE_UNREADABLE "not a regular file"', async (_kind, make) => {
    const path = make();
    const result = await inject(path);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toBe(
      `meshauth: ${path}: cannot read config file (not a regular file) [MESHAUTH_ERR_FILE_UNREADABLE]\n`,
    );
    expect(result.stdout).toBe('');
  });
});
