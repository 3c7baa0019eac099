// Two `cert request`/`ca issue` runs with the same --out: run A made the directory, failed, and removed it (empty)
// while run B, which had found it, was about to take its lock there, or was waiting on A's lock. B then wrote without
// the lock (waitForLock read ENOENT as "this directory takes no lock file") or failed with ENOENT on the lock file. B
// now makes the directory again, takes the lock in it, and owns what it made (removed when its own write fails).
// A's removal is done by the test at exactly those two moments: right after B's mkdir, and while B waits.
import { mkdirSync, mkdtempSync, readdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { rm, rmdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { waitFor } from '../../helpers/wait.js';

/** Directories removed right after the next makeKeyDirectory, innermost first: run A taking back what it made. */
const removeAfterMkdir = vi.hoisted(() => ({ dirs: [] as string[] }));

vi.mock('../../../src/cli/key-pair-files.js', async (original) => {
  const real = await original<typeof import('../../../src/cli/key-pair-files.js')>();
  return {
    ...real,
    makeKeyDirectory: async (dir: string) => {
      const created = await real.makeKeyDirectory(dir);
      for (const gone of removeAfterMkdir.dirs.splice(0)) rmdirSync(gone);
      return created;
    },
  };
});

const { writeAtOutPrefix } = await import('../../../src/cli/out-prefix.js');
const { keyPairLockPath } = await import('../../../src/cli/key-pair-lock.js');

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'meshauth-out-prefix-race-'));
});
afterEach(() => {
  removeAfterMkdir.dirs = [];
  vi.restoreAllMocks();
  rmSync(root, { recursive: true, force: true });
});

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

/** B's write: whether it held the pair's lock, then the key written (or a failure). */
function writer(prefix: string, fail = false) {
  const seen = { lockHeld: undefined as boolean | undefined };
  const write = async () => {
    seen.lockHeld = await exists(keyPairLockPath(`${prefix}.key`));
    if (fail) throw new Error('the CA refused');
    writeFileSync(`${prefix}.key`, 'KEY\n');
    return 'written';
  };
  return { seen, write };
}

describe('writeAtOutPrefix with the directory removed by another run', () => {
  it('ok/removed right after B found it: B makes it again and writes holding the lock', async () => {
    const dir = join(root, 'certs');
    mkdirSync(dir);
    const prefix = join(dir, 'web');
    removeAfterMkdir.dirs = [dir];
    const b = writer(prefix);
    await expect(writeAtOutPrefix(prefix, b.write)).resolves.toBe('written');
    expect(b.seen.lockHeld).toBe(true);
    expect(readdirSync(dir)).toEqual(['web.key']);
  });

  it('fail/removed with its parent, then B fails: B takes back both directories it made again', async () => {
    const dir = join(root, 'a', 'certs');
    mkdirSync(dir, { recursive: true });
    const prefix = join(dir, 'web');
    removeAfterMkdir.dirs = [dir, dirname(dir)];
    const b = writer(prefix, true);
    await expect(writeAtOutPrefix(prefix, b.write)).rejects.toThrow('the CA refused');
    expect(b.seen.lockHeld).toBe(true);
    expect(readdirSync(root)).toEqual([]);
  });

  it('ok/removed while B waits on A: B makes it again and takes the lock, no ENOENT', async () => {
    const dir = join(root, 'certs');
    mkdirSync(dir);
    const prefix = join(dir, 'web');
    const lock = keyPairLockPath(`${prefix}.key`);
    writeFileSync(lock, 'run A\n'); // fresh: A is live, B waits for it
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const b = writer(prefix);
    const written = writeAtOutPrefix(prefix, b.write);
    await waitFor('B waiting on A', () => stderr.mock.calls.some(([text]) => String(text).includes('waiting for')));
    // A ends: its lock released, its directory taken back. Should B take the lock between the two (it tries every
    // 100 ms), the rmdir finds the directory in use and B's run is the ordinary one.
    await rm(lock);
    await rmdir(dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOTEMPTY') throw error;
    });
    await expect(written).resolves.toBe('written');
    expect(b.seen.lockHeld).toBe(true);
    expect(readdirSync(dir)).toEqual(['web.key']);
  });
});
