// The lock of one key-and-chain pair on a real temporary directory: a second holder waits for the first, a live
// holder keeps its lock fresh past the stale age, a holder whose lock was broken is told so before it writes, and a
// directory that takes no lock file runs the action unlocked, as before the lock.
import { mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireRotationLock, STALE_LOCK_MS } from '../../../src/ca/rotation-lock.js';
import { keyPairLockPath, withKeyPairLock } from '../../../src/cli/key-pair-lock.js';
import { exitCodeFor } from '../../../src/cli/run.js';
import { MeshauthError } from '../../../src/errors/index.js';
import { waitFor } from '../../helpers/wait.js';

let dir: string;
let key: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshauth-key-pair-lock-'));
  key = join(dir, 'web.key');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Sets the file's mtime back past STALE_LOCK_MS, as if its holder had stopped that long ago. */
async function makeStale(path: string): Promise<void> {
  const past = new Date(Date.now() - STALE_LOCK_MS - 5_000);
  await utimes(path, past, past);
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

/** A promise and the function that settles it: lets a test hold an action open until it says so. */
function gate(): { opened: Promise<void>; open: () => void } {
  let resolveOpened: (() => void) | undefined;
  const opened = new Promise<void>((resolve) => {
    resolveOpened = resolve;
  });
  return { opened, open: () => resolveOpened?.() };
}

describe('withKeyPairLock', () => {
  it('ok/a second holder waits for the first to finish, is told who holds it, then runs', async () => {
    const events: string[] = [];
    const firstMayEnd = gate();
    const first = withKeyPairLock(key, async () => {
      events.push('first start');
      await firstMayEnd.opened;
      events.push('first end');
    });
    await waitFor('the first holder', () => events.includes('first start'));
    const holders: string[] = [];
    const second = withKeyPairLock(
      key,
      async () => {
        events.push('second');
      },
      { onWait: (holder) => holders.push(holder) },
    );
    await waitFor('the second to wait', () => holders.length === 1);
    expect(holders[0]).toMatch(/^[0-9a-f]{32} \S+ pid \d+$/);
    expect(events).toEqual(['first start']);
    firstMayEnd.open();
    await Promise.all([first, second]);
    expect(events).toEqual(['first start', 'first end', 'second']);
    expect(await exists(keyPairLockPath(key))).toBe(false);
  });

  it('ok/a holder keeps its lock fresh: past the stale age another process still cannot take it', async () => {
    const mayEnd = gate();
    let holding = false;
    const held = withKeyPairLock(
      key,
      async (lock) => {
        holding = true;
        await mayEnd.opened;
        await lock.assertHeld();
      },
      { heartbeatMs: 20 },
    );
    await waitFor('the holder', () => holding);
    const path = keyPairLockPath(key);
    await makeStale(path);
    await waitFor(
      'the heartbeat to refresh the lock',
      async () => Date.now() - (await stat(path)).mtimeMs < STALE_LOCK_MS / 2,
    );
    expect(await acquireRotationLock(path)).toBeUndefined();
    mayEnd.open();
    await held;
  });

  it('fail/a holder whose stale lock another process broke is refused before it writes (EBUSY, exit 1)', async () => {
    const mayWrite = gate();
    let holding = false;
    const held = withKeyPairLock(
      key,
      async (lock) => {
        holding = true;
        await mayWrite.opened;
        await lock.assertHeld();
        return 'written';
      },
      // No heartbeat during the test: the holder is as good as stopped.
      { heartbeatMs: 3_600_000 },
    );
    await waitFor('the holder', () => holding);
    const path = keyPairLockPath(key);
    await makeStale(path);
    const breaker = await acquireRotationLock(path);
    expect(breaker).toBeDefined();
    const breakersContent = await readFile(path, 'utf8');
    mayWrite.open();
    const error = await held.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MeshauthError);
    expect(error).toMatchObject({ code: 'MESHAUTH_ERR_FILE_UNWRITABLE', reason: 'key_pair_lock_lost' });
    expect((error as Error).message).toContain(`cannot write ${key}: this process held ${path} so long`);
    expect(exitCodeFor(error)).toBe(1);
    // The breaker's lock is left alone by the holder's release.
    expect(await readFile(path, 'utf8')).toBe(breakersContent);
    await breaker?.release();
  });

  it('fail/a lock held past the wait → MESHAUTH_ERR_FILE_UNWRITABLE key_pair_locked naming the lock, exit 1', async () => {
    const other = await acquireRotationLock(keyPairLockPath(key));
    expect(other).toBeDefined();
    let ran = false;
    const error = await withKeyPairLock(
      key,
      async () => {
        ran = true;
      },
      { timeoutMs: 300 },
    ).catch((e: unknown) => e);
    expect(ran).toBe(false);
    expect(error).toMatchObject({ code: 'MESHAUTH_ERR_FILE_UNWRITABLE', reason: 'key_pair_locked' });
    expect((error as Error).message).toMatch(
      new RegExp(`^cannot write ${key}: another process is still writing it \\(${keyPairLockPath(key)} is held: `),
    );
    expect(exitCodeFor(error)).toBe(1);
    await other?.release();
  });

  it.each([
    ['a missing directory', async () => join(dir, 'missing', 'web.key')],
    [
      'a path under a regular file (ENOTDIR)',
      async () => {
        await writeFile(join(dir, 'plain'), '');
        return join(dir, 'plain', 'web.key');
      },
    ],
  ])('ok/%s takes no lock file: the action runs unlocked, as before the lock', async (_name, keyIn) => {
    const file = await keyIn();
    const result = await withKeyPairLock(file, async (lock) => {
      await lock.assertHeld();
      return 'ran';
    });
    expect(result).toBe('ran');
    expect(await exists(keyPairLockPath(file))).toBe(false);
  });
});
