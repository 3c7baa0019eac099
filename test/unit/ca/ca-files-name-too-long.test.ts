// A file name too long for its directory: the temporary file (a short name) is written, and only the link or rename
// into place fails with ENAMETOOLONG. Node names the source of that call, the temporary file, which is removed at
// once, so the CLI said `cannot write dir/.868e87393ac8.tmp: ENAMETOOLONG (link)`. The error now names the path the
// caller asked for; nothing is left behind.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFileExclusive, writeFileAtomic } from '../../../src/ca/ca-files.js';
import { waitForLock } from '../../../src/ca/rotation-lock.js';
import { exitCodeFor, formatError, fromFileSystemError } from '../../../src/cli/run.js';

/** Longer than any file name a Linux or macOS file system takes (255 bytes). */
const TOO_LONG = 'k'.repeat(256);

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'meshauth-ca-files-long-'));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

async function failure(run: () => Promise<unknown>): Promise<unknown> {
  return run().then(
    () => undefined,
    (e: unknown) => e,
  );
}

function expectNamesTarget(error: unknown, target: string): void {
  expect(error).toMatchObject({ code: 'ENAMETOOLONG', path: target });
  const text = formatError(fromFileSystemError(error));
  expect(text).toBe(
    `meshauth: cannot write ${target}: ENAMETOOLONG (${(error as { syscall: string }).syscall}) [MESHAUTH_ERR_FILE_UNWRITABLE]`,
  );
  expect(text).not.toContain('.tmp');
  expect(exitCodeFor(fromFileSystemError(error))).toBe(2);
  expect(readdirSync(root)).toEqual([]);
}

describe('CA files with a name too long for the directory', () => {
  it('fail/createFileExclusive: the link error names the file asked for, not the temporary file', async () => {
    const target = join(root, TOO_LONG);
    expectNamesTarget(await failure(() => createFileExclusive(target, 'x\n', 0o600)), target);
  });

  it('fail/a lock whose name is too long: waitForLock throws naming the lock file', async () => {
    const target = join(root, `${TOO_LONG}.lock`);
    const error = await failure(() =>
      waitForLock(target, { timeoutMs: 1_000, timedOut: () => new Error('not expected: nothing holds it') }),
    );
    expectNamesTarget(error, target);
  });

  it('fail/writeFileAtomic: the rename error names the file asked for', async () => {
    const target = join(root, TOO_LONG);
    expectNamesTarget(await failure(() => writeFileAtomic(target, 'x\n', 0o644)), target);
  });
});
