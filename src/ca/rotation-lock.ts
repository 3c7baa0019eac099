// The lock file that keeps `ca serve` replicas sharing one CA directory from rotating the intermediate at once.
import { rm, stat } from 'node:fs/promises';
import { createFileExclusive, PRIVATE_FILE_MODE } from './ca-files.js';

/** A lock older than this belongs to a process that died mid-rotation. */
export const STALE_LOCK_MS = 60_000;

export interface RotationLock {
  /** Gives the lock up. */
  release(): Promise<void>;
}

/** Takes the lock at `path`, breaking it when stale; undefined when another process holds it. */
export async function acquireRotationLock(path: string): Promise<RotationLock | undefined> {
  if (!(await acquire(path))) return undefined;
  return { release: () => rm(path, { force: true }) };
}

async function acquire(lock: string): Promise<boolean> {
  if (await createFileExclusive(lock, `${process.pid}\n`, PRIVATE_FILE_MODE)) return true;
  const age = await stat(lock).then(
    (s) => Date.now() - s.mtimeMs,
    () => 0,
  );
  if (age < STALE_LOCK_MS) return false;
  await rm(lock, { force: true });
  return createFileExclusive(lock, `${process.pid}\n`, PRIVATE_FILE_MODE);
}
