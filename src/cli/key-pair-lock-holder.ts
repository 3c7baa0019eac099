// Who holds a key pair's lock, as a process, so that a lock whose holder has ended is broken at once. The lock itself
// (rotation-lock.ts) holds a token, and is judged stale only by its mtime, a minute after the last heartbeat: right
// for a holder on another host sharing the directory, which no process here can see, but a `cert renew` killed by
// SIGKILL (a cron job's timeout, a restarted pod) made the next run on the same machine wait that minute for a
// process that no longer existed. The holder therefore leaves beside the lock a record of itself, `<lock>.holder`,
// bound to the lock by its content, that a process in the same boot and PID namespace can check. It must not read or
// write the pair.
import { lstat, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { createFileExclusive, PRIVATE_FILE_MODE } from '../ca/ca-files.js';
import { acquireRotationLock, lockHolder } from '../ca/rotation-lock.js';
import {
  type ProcessIdentity,
  processIdentityOf,
  processState,
  readRegularFile,
  thisProcess,
} from '../platform/index.js';

/** The record of the lock at `lockPath`'s holder: `web.key.lock.holder` beside `web.key.lock`. */
export function holderRecordPath(lockPath: string): string {
  return `${lockPath}.holder`;
}

interface HolderRecord extends ProcessIdentity {
  /** The lock's content when the holder wrote this: a record of an earlier lock at the same path matches no other. */
  readonly lock: string;
  /** For the operator reading the log; not judged on (boot and PID namespace are). */
  readonly host: string;
}

/** A lock broken because its holder had ended. */
export interface EndedHolder {
  readonly pid: number;
  readonly host: string;
  /** How long before the break its holder last refreshed it: under STALE_LOCK_MS, it would have been waited out. */
  readonly lockAgeMs: number;
}

export interface RecordedHolder {
  /** Removes the record, before the lock is released: a record left behind must not outlive its lock for long. */
  forget(): Promise<void>;
}

/**
 * Writes the record of this process as the holder of the lock at `lockPath`, which it has just taken. Best effort:
 * without a record (no /proc, a full disk), the lock is broken only when stale, as before records.
 */
export async function recordHolder(lockPath: string): Promise<RecordedHolder> {
  const self = thisProcess();
  const lock = await lockHolder(lockPath);
  const path = holderRecordPath(lockPath);
  if (self === undefined || lock === 'unknown') return { forget: async () => undefined };
  const record: HolderRecord = { lock, host: hostname(), ...self };
  try {
    // One of a holder that ended without removing it: written for a lock that no longer exists, it matches nothing.
    await rm(path, { force: true });
    await createFileExclusive(path, `${JSON.stringify(record)}\n`, PRIVATE_FILE_MODE);
  } catch {
    return { forget: async () => undefined };
  }
  return {
    forget: async () => {
      // Another holder's, if this one's lock was broken as stale meanwhile: left to it.
      if (readRecord(lockPath)?.lock === lock) await rm(path, { force: true }).catch(() => undefined);
    },
  };
}

/**
 * Breaks the lock at `lockPath` if its recorded holder has ended, and says whose it was; undefined (nothing done)
 * when the lock is free, held by a process that runs or one this process cannot see, or being broken or released by
 * another process right now.
 *
 * The lock file is removed only under its break lock (`<lock>.break`, rotation-lock.ts), the one its holder's release
 * and rotation-lock's breaking of a stale lock take. Under it the lock file can only appear, never be replaced: the
 * content judged here is still the ended holder's lock when it is removed, and of several processes that found it at
 * once, the first breaks it and the next ones find it gone or another holder's, and leave it; then exclusive creation
 * lets one of them take it. The break lock is taken as rotation-lock takes any lock (exclusive creation, broken only
 * when stale, removed only by its holder), so it is the same file and the same rules.
 */
export async function breakIfHolderEnded(lockPath: string): Promise<EndedHolder | undefined> {
  const ended = await endedHolder(lockPath);
  if (ended === undefined) return undefined;
  const breaking = await acquireRotationLock(`${lockPath}.break`);
  if (breaking === undefined) return undefined;
  try {
    if ((await lockHolder(lockPath)) !== ended.lock) return undefined;
    const lockAgeMs = Math.max(0, Date.now() - (await lstat(lockPath)).mtimeMs);
    // The record first: while the lock still stands no other process writes one.
    await rm(holderRecordPath(lockPath), { force: true });
    await rm(lockPath, { force: true });
    return { pid: ended.pid, host: ended.host, lockAgeMs };
  } finally {
    await breaking.release();
  }
}

/** The record of the lock at `lockPath` when it is that very lock's and names a process that has ended. */
async function endedHolder(lockPath: string): Promise<HolderRecord | undefined> {
  const lock = await lockHolder(lockPath);
  if (lock === 'unknown') return undefined;
  const record = readRecord(lockPath);
  if (record === undefined || record.lock !== lock || processState(record, thisProcess()) !== 'ended') return undefined;
  return record;
}

/** The record at the lock's path; undefined when there is none or it is not one (never trusted beyond its shape). */
function readRecord(lockPath: string): HolderRecord | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readRegularFile(holderRecordPath(lockPath), MAX_RECORD_BYTES).bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  const identity = processIdentityOf(parsed);
  if (identity === undefined) return undefined;
  const { lock, host } = parsed as Record<string, unknown>;
  if (typeof lock !== 'string' || typeof host !== 'string') return undefined;
  return { ...identity, lock, host };
}

/** A record is a few hundred bytes. */
const MAX_RECORD_BYTES = 4096;
