// `meshauth inject -f PATH` / `uninject -f PATH` where PATH is not a manifest: a directory or a device is refused at
// once with exit 2 naming it (a directory printed the raw EISDIR, /dev/zero was read until the process ran out of
// memory). A pipe is still read to its end: `-f <(kustomize build)` is how manifests often arrive.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, MAIN } from '../helpers/meshauth-cli.js';
import { runCommand } from '../helpers/sidecar-harness.js';
import { ENDLESS_DEVICE } from '../helpers/special-files.js';

const MANIFEST = new URL('../fixtures/k8s/daemonset.yaml', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'meshauth-e2e-inject-manifest-kind-'));
const directory = join(dir, 'manifests.d');
mkdirSync(directory);
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(() => assertBuilt(['src/config', 'src/cli', 'src/platform']));

/** The built CLI, killed after 10 s (a device used to be read without end). */
const run = (args: readonly string[]) => runCommand(process.execPath, [MAIN, ...args], { timeoutMs: 10_000 });

describe('meshauth inject -f naming something other than a manifest file or a pipe', () => {
  it.each([
    ['inject', 'a directory', directory],
    ['uninject', 'a directory', directory],
    ['inject', 'a device without end', ENDLESS_DEVICE],
  ])(
    'fail/%s -f %s → exit 2 at once, "cannot read manifest file (not a regular file or a pipe)"',
    async (command, _kind, path) => {
      const result = await run([command, '-f', path]);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toBe(
        `meshauth: ${path}: cannot read manifest file (not a regular file or a pipe) [MESHAUTH_ERR_FILE_UNREADABLE]\n`,
      );
    },
  );

  it('ok/-f <(cat manifest) reads the pipe to its end, as -f manifest does', async () => {
    // The shell's process substitution hands over /dev/fd/N, a pipe.
    const script = `exec "$0" "$1" inject -f <(cat "$2")`;
    const result = await runCommand('bash', ['-c', script, process.execPath, MAIN, MANIFEST], { timeoutMs: 10_000 });
    expect(result.code, result.stderr).toBe(0);
    const fromFile = await run(['inject', '-f', MANIFEST]);
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(result.stdout).toContain('meshauth-in');
    expect(result.stdout).toBe(fromFile.stdout);
  });
});
