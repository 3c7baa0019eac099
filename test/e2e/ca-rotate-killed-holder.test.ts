// A CA directory whose lock was left by a process killed while it held it (`ca rotate` SIGKILLed between its new key
// and its certificate, a replica killed mid-rotation). The lock stays behind, fresh, and every command and replica
// used to wait a minute for it to go stale; now a process on the same machine breaks it at once and says so: the next
// `ca rotate` mends the torn directory right away, a `ca serve` starting on it refuses it at once instead of after the
// wait, and a replica due to rotate breaks it and rotates.
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadCaMaterial, rotateIntermediate } from '../../src/ca/index.js';
import { ROTATION_LOCK_FILE, STALE_LOCK_MS } from '../../src/ca/rotation-lock.js';
import { cliCaDirPerTest } from '../helpers/ca-dir.js';
import { capturedProcess, spawnAutoRotatingServe, spawnCli, waitForCli } from '../helpers/cli-process.js';
import { ROOT } from '../helpers/meshauth-cli.js';
import { pauseAfterRename } from '../helpers/pause-at-rename.js';

const ca = cliCaDirPerTest('meshauth-e2e-rotate-killed-');
const dir = () => ca.dir;
const lock = () => join(dir(), ROTATION_LOCK_FILE);
const BROKE =
  /meshauth: broke \.intermediate-rotation\.lock in .*: the process that held it \(pid (\d+) on .*\) has ended \(killed, most likely\)$/m;

/** A `ca rotate --intermediate` SIGKILLed right after it replaced the key: a torn directory and a fresh lock. */
async function killedRotation(): Promise<number> {
  const pause = pauseAfterRename(ca.cwd, 'intermediate.key', 'killed');
  const rotation = spawnCli(['ca', 'rotate', '--intermediate', '--dir', dir()], ca.cleanups, pause.env);
  await pause.reached();
  const pid = rotation.child.pid as number;
  process.kill(pid, 'SIGKILL');
  expect(await rotation.exited).toEqual({ code: null, signal: 'SIGKILL' });
  expect(Date.now() - statSync(lock()).mtimeMs).toBeLessThan(STALE_LOCK_MS);
  return pid;
}

describe.runIf(process.platform === 'linux')(
  'a CA directory lock left by a killed process',
  { timeout: 60_000 },
  () => {
    it('ok/the next `ca rotate --intermediate` breaks it at once, says whose it was, and mends the torn directory', async () => {
      const pid = await killedRotation();
      await expect(loadCaMaterial(dir())).rejects.toMatchObject({ reason: 'inconsistent' });
      const next = spawnCli(['ca', 'rotate', '--intermediate', '--dir', dir()], ca.cleanups);
      expect(await next.exited, next.output()).toEqual({ code: 0, signal: null });
      expect(next.output()).not.toContain('waiting for another process');
      expect(next.output().match(BROKE)?.[1]).toBe(String(pid));
      await loadCaMaterial(dir());
      expect(existsSync(lock())).toBe(false);
    });

    it('fail/`ca serve` on the torn directory breaks the lock at once and refuses what stays torn, without the wait', async () => {
      const pid = await killedRotation();
      const serve = spawnCli(['ca', 'serve', '--dir', dir(), '--listen', '127.0.0.1:0'], ca.cleanups);
      const exit = await serve.exited;
      expect(exit.code, serve.output()).not.toBe(0);
      const broken = serve.logs().filter((line) => line.event === 'rotation_lock_broken');
      expect(broken).toEqual([
        expect.objectContaining({ level: 'warn', reason: 'holder_ended', lock: ROTATION_LOCK_FILE, holderPid: pid }),
      ]);
      expect(broken[0]?.lockAgeMs).toBeLessThan(STALE_LOCK_MS);
      expect(serve.output()).toMatch(/inconsistent|do not fit together/);
    });

    it('ok/a replica due to rotate breaks the lock of a killed holder and rotates', async () => {
      // An intermediate past half its life: the replica rotates within its first second.
      await rotateIntermediate(dir(), new Date(Date.now() - 120_000), 200_000);
      const module = pathToFileURL(join(ROOT, 'dist/src/ca/rotation-lock.js')).href;
      const holder = capturedProcess(
        spawn(
          process.execPath,
          [
            '--input-type=module',
            '-e',
            `const { acquireRotationLock } = await import(process.argv[1]);
           if (await acquireRotationLock(process.argv[2])) process.stdout.write('held\\n');
           setInterval(() => {}, 1000);`,
            '--',
            module,
            lock(),
          ],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        ),
        ca.cleanups,
      );
      await waitForCli(holder, 'the child to hold the lock', () => holder.output().includes('held\n'), 15_000);
      const pid = holder.child.pid as number;
      process.kill(pid, 'SIGKILL');
      await holder.exited;
      const serve = spawnAutoRotatingServe(dir(), ca.cleanups);
      await waitForCli(
        serve,
        'the replica to rotate',
        () => serve.logs().some((line) => line.event === 'intermediate_rotated'),
        20_000,
      );
      expect(serve.logs().filter((line) => line.event === 'rotation_lock_broken')).toEqual([
        expect.objectContaining({ reason: 'holder_ended', holderPid: pid }),
      ]);
      await loadCaMaterial(dir());
    });
  },
);
