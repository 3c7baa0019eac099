// A credential file named by a CLI flag (a join token, a PKCS#12 password, a bundle, a certificate) that is not a
// regular file: exit 2, one line naming the flag, what the file was to be and why, [MESHAUTH_ERR_FILE_UNREADABLE].
// These printed Node's raw text: "token file … cannot be read (ENOTREG)", "cannot read …: EISDIR: illegal operation
// on a directory, read", or, for the password file, no reason at all.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, MAIN } from '../helpers/meshauth-cli.js';
import { runCommand } from '../helpers/sidecar-harness.js';
import { fifoIn } from '../helpers/special-files.js';

const dir = mkdtempSync(join(tmpdir(), 'meshauth-e2e-credential-kind-'));
const directory = join(dir, 'a-directory');
mkdirSync(directory);
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(() => assertBuilt(['src/config', 'src/cli', 'src/platform']));

/** The built CLI, killed after 10 s (a FIFO at the path used to block it). Nothing is listening at the CA URL. */
const run = (args: readonly string[]) => runCommand(process.execPath, [MAIN, ...args], { timeoutMs: 10_000 });
const CA = ['--ca-url', 'https://127.0.0.1:1'];
const ID = 'spiffe://example.org/ns/a/sa/b';

describe('a credential file that is not a regular file', () => {
  it.each([
    [
      '--token-file',
      'token file',
      [
        'cert',
        'request',
        ...CA,
        '--bundle',
        join(dir, 'none.pem'),
        '--out',
        join(dir, 'wl'),
        '--token-file',
        directory,
      ],
    ],
    ['--p12-password-file', 'password file', ['ca', 'issue', '--id', ID, '--p12', '--p12-password-file', directory]],
    [
      '--bundle',
      'trust bundle',
      ['cert', 'token', ...CA, '--bundle', directory, '--cert', 'x', '--key', 'y', '--audience', 'a'],
    ],
    ['cert inspect', 'certificate file', ['cert', 'inspect', directory]],
  ])('fail/%s naming a directory → exit 2, "<flag>: <what> <path>: not a regular file"', async (flag, what, args) => {
    const result = await run(args);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toBe(
      `meshauth: ${flag}: ${what} ${directory}: not a regular file [MESHAUTH_ERR_FILE_UNREADABLE]\n`,
    );
  });

  it('fail/--token-file naming a FIFO with no writer → exit 2 at once', async () => {
    const fifo = fifoIn(dir, 'join.token');
    const args = ['cert', 'request', ...CA, '--bundle', join(dir, 'none.pem'), '--out', join(dir, 'wl')];
    const result = await run([...args, '--token-file', fifo]);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toBe(
      `meshauth: --token-file: token file ${fifo}: not a regular file [MESHAUTH_ERR_FILE_UNREADABLE]\n`,
    );
  });
});
