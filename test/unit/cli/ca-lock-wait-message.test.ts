// A `ca` command that finds the CA directory locked says on stderr whom it waits for and when a dead holder's lock is
// broken (at once on this machine, after the stale delay elsewhere). That delay is STALE_LOCK_MS of rotation-lock.ts: the sentence must follow the constant, so the test gives
// the CLI another value than the real one (the lock itself keeps its own) and reads it back.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { acquireRotationLock, ROTATION_LOCK_FILE, STALE_LOCK_MS } from '../../../src/ca/rotation-lock.js';
import { buildProgram } from '../../../src/cli/program.js';
import { makeCaDir } from '../../helpers/ca-dir.js';
import { waitFor } from '../../helpers/wait.js';

vi.mock('../../../src/ca/rotation-lock.js', async (original) => ({
  ...(await original<typeof import('../../../src/ca/rotation-lock.js')>()),
  STALE_LOCK_MS: 90_000,
}));

let ca: Awaited<ReturnType<typeof makeCaDir>>;
let stderr: string[];

beforeEach(async () => {
  ca = await makeCaDir();
  stderr = [];
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr.push(String(chunk));
    return true;
  });
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
});
afterEach(() => {
  vi.restoreAllMocks();
  ca.cleanup();
});

describe('ca rotate waiting for the directory lock', () => {
  it('ok/the wait message names the stale-lock delay of rotation-lock.ts', async () => {
    expect(STALE_LOCK_MS).toBe(90_000);
    const held = await acquireRotationLock(join(ca.dir, ROTATION_LOCK_FILE));
    expect(held).toBeDefined();
    const rotation = buildProgram().parseAsync(['ca', 'rotate', '--intermediate', '--dir', ca.dir], { from: 'user' });
    let released = false;
    try {
      const line = await waitFor('the wait message', () => stderr.find((text) => text.includes('waiting for')));
      expect(line).toContain(
        'a lock left by a process that died is broken at once from the same boot, PID and time namespace, after 90 s otherwise\n',
      );
    } finally {
      released = (await held?.release()) === 'released';
      await rotation;
    }
    expect(released).toBe(true);
  });
});
