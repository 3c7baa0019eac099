// A holder whose own lock cannot be read for a moment (EMFILE, EIO) while it releases it: the read says nothing of
// whose the lock is, so the release tries again and removes its lock, or leaves it ('left') when the reads keep
// failing; it never reports a takeover that did not happen. Another process's unreadable lock, by contrast, reads as
// a holder that cannot be judged and is waited for.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { acquireRotationLock } from '../../../src/ca/rotation-lock.js';
import * as platform from '../../../src/platform/index.js';

vi.mock('../../../src/platform/index.js', async (original) => {
  const actual = await original<typeof import('../../../src/platform/index.js')>();
  return { ...actual, readRegularFile: vi.fn(actual.readRegularFile) };
});

let dir: string;
let lock: string;
let failing = 0;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshauth-lock-read-'));
  lock = join(dir, '.intermediate-rotation.lock');
  const actual = (
    await vi.importActual<typeof import('../../../src/platform/index.js')>('../../../src/platform/index.js')
  ).readRegularFile;
  vi.mocked(platform.readRegularFile).mockImplementation((path, maxBytes) => {
    if (path === lock && failing > 0) {
      failing -= 1;
      throw Object.assign(new Error(`EIO: i/o error, open '${path}'`), { code: 'EIO' });
    }
    return actual(path, maxBytes);
  });
});
afterEach(async () => {
  failing = 0;
  await rm(dir, { recursive: true, force: true });
});

describe('releasing a lock its holder cannot read for a moment', () => {
  it('ok/two failed reads, then the release removes the lock: released, not taken over', async () => {
    const held = await acquireRotationLock(lock);
    expect(held).toBeDefined();
    failing = 2;
    expect(await held?.release()).toBe('released');
    expect(failing).toBe(0);
    expect(existsSync(lock)).toBe(false);
  });

  it('fail/reads that keep failing: the lock is left (to go stale), never reported as taken over', async () => {
    const held = await acquireRotationLock(lock);
    failing = 1_000;
    expect(await held?.release()).toBe('left');
    expect(existsSync(lock)).toBe(true);
  });

  it('ok/isHeld throws on a failed read instead of answering false', async () => {
    const held = await acquireRotationLock(lock);
    failing = 1;
    await expect(held?.isHeld()).rejects.toMatchObject({ code: 'EIO' });
    expect(await held?.isHeld()).toBe(true);
    expect(await held?.release()).toBe('released');
  });

  it("ok/another process's lock that fails to read is waited for, not an error", async () => {
    const held = await acquireRotationLock(lock);
    failing = 10;
    expect(await acquireRotationLock(lock)).toBeUndefined();
    failing = 0;
    expect(await held?.release()).toBe('released');
  });
});
