// The lock file that keeps processes changing one CA directory from writing it at once: `ca serve` replicas rotating
// the intermediate, and the `ca rotate`, `ca init` (when it replaces files), `ca issue` and `ca token create`
// commands; also a key pair's lock (key-pair-lock.ts). The directory may be a volume shared by several hosts, so the
// rules every holder can follow are plain file operations: exclusive creation (link(2), see ca-files.ts), the file's
// mtime for staleness, and a random token per holder (a pid means nothing on another host). A holder on this machine
// also writes its process identity into the lock, so that another process in the same boot, PID and time namespace
// breaks the lock of a holder that has ended (a killed `ca rotate`, `cert renew`) at once instead of a minute later.
// It must not decide whether a rotation is due: that is CertificateWatch's job.
import { lstat, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { MeshauthError } from '../errors/index.js';
import { readRegularFile } from '../platform/index.js';
import { createFileExclusive, PRIVATE_FILE_MODE } from './ca-files.js';
import { type EndedHolder, endedHolder, holderContent, holderLine } from './lock-holder.js';

export type { EndedHolder } from './lock-holder.js';

/** The lock's name in the CA directory (kept from when only intermediate rotations took it: running replicas use it). */
export const ROTATION_LOCK_FILE = '.intermediate-rotation.lock';

/**
 * A lock older than this belongs to a process that died holding it. Holding the lock takes one rotation (well under a
 * second), holding the break lock a stat and a link: a live holder never gets near it.
 */
export const STALE_LOCK_MS = 60_000;

export type ReleaseOutcome =
  /** The lock was this holder's and is gone. */
  | 'released'
  /** Another process broke the lock as stale meanwhile (this holder took over STALE_LOCK_MS): theirs is left alone. */
  | 'taken_over'
  /** Another process held the break lock throughout the release's retries: the lock is left to go stale. */
  | 'left';

/**
 * A release retries this often while another process holds the break lock. That process holds it for milliseconds
 * (it found the lock gone a moment before this holder's lock was created, and judges again): without the retry, the
 * lock was left behind and every command and replica waited for it to go stale, a minute.
 */
const RELEASE_ATTEMPTS = 20;
const RELEASE_RETRY_MS = 25;

export interface RotationLock {
  /** Removes the lock file only if it still holds this holder's token. */
  release(): Promise<ReleaseOutcome>;
  /**
   * True while the lock file still holds this holder's token (no other process broke it as stale); throws when the
   * file cannot be read.
   */
  isHeld(): Promise<boolean>;
}

/*
 * Why breaking a stale lock needs a second lock. Breaking it by "remove, then create exclusively" races: two replicas
 * that both find it stale both remove it, and the second removal can hit the lock the first one has just created, so
 * both hold it and both rotate. Here the lock file is removed only by a process holding the break lock (`<lock>.break`,
 * created exclusively): a breaker and a releasing holder. Under the break lock the lock file can therefore only
 * appear (exclusive creation, when there is none), never be replaced, so a lock judged stale under it is still that
 * same stale lock when this process removes it, and the replicas that found it stale at the same time are serialized:
 * the first replaces it, the next ones judge again and find a fresh lock. No identity check (inode, mtime) is needed
 * beyond judging staleness under the break lock.
 *
 * The break lock is itself broken by the same rule when stale (its holder died between its creation and its removal,
 * a few milliseconds), by removal and exclusive creation: the race above then needs that death and two replicas
 * breaking the same dead break lock within the same moment. Two rotations at once write key, certificate, key,
 * certificate in some order (each file renamed into place whole), so the worst they leave is a key from one and the
 * certificate from the other: no process loads that pair (each signs on with the intermediate it has in memory, a
 * replica cannot start), meshauth_ca_issuer_valid falls to 0, until the next rotation writes a consistent pair.
 *
 * A live process is assumed to finish each step well within STALE_LOCK_MS; mtimes come from the volume's clock and
 * ages from this host's, so the clocks must agree to well within it too.
 */

export interface AcquireOptions {
  /**
   * Called when this process broke a lock whose holder had ended, and awaited before the lock is handed over; what it
   * throws is dropped (a report must not cost the lock just taken).
   */
  readonly onHolderEnded?: (holder: EndedHolder) => void | Promise<void>;
}

/**
 * Takes the lock at `path`, breaking it when its holder has ended or when it is stale; undefined when another
 * process holds it or is breaking it.
 */
export async function acquireRotationLock(
  path: string,
  options: AcquireOptions = {},
): Promise<RotationLock | undefined> {
  const content = holderContent();
  if (await createFileExclusive(path, content, PRIVATE_FILE_MODE)) return heldLock(path, content);
  if (!(await mayBreak(path))) return undefined;
  // Stale, its holder ended, or released a moment ago: judge it again under the break lock, where the lock file can
  // only appear, never be replaced, so what is judged is what is removed.
  let ended: EndedHolder | undefined;
  const taken = await underBreakLock(path, async () => {
    const age = await ageOf(path);
    if (age !== undefined) {
      // Whatever is at the path (a lock, a link, something unreadable): judged by its holder when it names one that
      // ended, else by its age.
      const found = await contentOf(path);
      const holder = found === undefined ? undefined : endedHolder(found, Math.max(0, age));
      // Another breaker replaced it first, or its holder runs (or may: another host, namespace, boot).
      if (holder === undefined && age < STALE_LOCK_MS) return false;
      await rm(path, { force: true });
      ended = holder;
    }
    return createFileExclusive(path, content, PRIVATE_FILE_MODE);
  });
  if (ended !== undefined) {
    try {
      await options.onHolderEnded?.(ended);
    } catch {
      // A report must not cost the lock just taken.
    }
  }
  return taken === true ? heldLock(path, content) : undefined;
}

/** Whether the lock at `path` is worth judging under the break lock: gone, stale, or held by an ended process. */
async function mayBreak(path: string): Promise<boolean> {
  const age = await ageOf(path);
  if (age === undefined || age >= STALE_LOCK_MS) return true;
  const found = await contentOf(path);
  return found === undefined || endedHolder(found, age) !== undefined;
}

function heldLock(path: string, content: string): RotationLock {
  return {
    isHeld: async () => (await ownContentOf(path)) === content,
    release: async () => {
      for (let attempt = 0; attempt < RELEASE_ATTEMPTS; attempt++) {
        if (attempt > 0) await delay(RELEASE_RETRY_MS);
        // A read that fails (EMFILE, EIO) says nothing of whose the lock is: tried again, never taken for a takeover.
        const outcome = await underBreakLock(path, async (): Promise<ReleaseOutcome> => {
          if ((await ownContentOf(path)) !== content) return 'taken_over';
          await rm(path, { force: true });
          return 'released';
        }).catch(() => undefined);
        if (outcome !== undefined) return outcome;
      }
      return 'left';
    },
  };
}

/** Runs `action` holding `<path>.break`; undefined (without running it) when another process holds that. */
async function underBreakLock<T>(path: string, action: () => Promise<T>): Promise<T | undefined> {
  const breakLock = `${path}.break`;
  const content = holderContent();
  if (!(await createFileExclusive(breakLock, content, PRIVATE_FILE_MODE))) {
    const age = await ageOf(breakLock);
    if (age !== undefined && age < STALE_LOCK_MS) return undefined;
    await rm(breakLock, { force: true });
    if (!(await createFileExclusive(breakLock, content, PRIVATE_FILE_MODE))) return undefined;
  }
  try {
    return await action();
  } finally {
    if ((await contentOf(breakLock)) === content) await rm(breakLock, { force: true });
  }
}

/** Milliseconds since the file (not what a symbolic link there names) was last modified; undefined when none. */
async function ageOf(path: string): Promise<number | undefined> {
  try {
    return Date.now() - (await lstat(path)).mtimeMs;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * What the lock file holds; undefined when there is none. Read without blocking, bounded: a FIFO someone made at the
 * path would hold the open (and the command, silently) until a writer came. What cannot be read as a lock (no
 * regular file: a FIFO, a socket, a link to itself; far larger than any holder writes; another user's lock this user
 * may not read, 0600) reads as nobody's content: a holder it cannot judge, whose lock is waited for until stale.
 * Undefined only when nothing is there to read (ENOENT, also through a link to nothing).
 */
function contentOf(path: string): Promise<string | undefined> {
  return ownContentOf(path).catch(() => '');
}

/**
 * The lock's content as its own holder reads it: as contentOf, but a read that fails (EMFILE, EIO, EACCES) throws
 * instead of reading as nobody's: for another process's lock that only means waiting until stale, for its own it
 * would be taken for a takeover.
 */
async function ownContentOf(path: string): Promise<string | undefined> {
  try {
    return readRegularFile(path, MAX_LOCK_BYTES).bytes.toString('utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    // Not a regular file, or larger than any holder writes: whatever is there now is not this holder's lock.
    if (code === 'ENOTREG' || code === 'EFBIG') return '';
    throw error;
  }
}

/** A holder writes a token, its host name, pid and process identity: far less than this. */
const MAX_LOCK_BYTES = 4096;

const UNLOCKABLE_DIRECTORY: ReadonlySet<string> = new Set([
  'ENOENT',
  'ENOTDIR',
  'EROFS',
  'EACCES',
  'EPERM',
  // A full disk or quota: `ca issue` only reads the directory and writes elsewhere (--out), so it must still run.
  'ENOSPC',
  'EDQUOT',
]);

/** How often a command waiting for the lock tries again. */
const LOCK_RETRY_MS = 100;

export interface LockWaitOptions extends AcquireOptions {
  /** Called once, when the lock is held by another process and this one starts waiting: who holds it. */
  readonly onWait?: (holder: string) => void;
  /** Called when another process broke the lock as stale before `action` finished. */
  readonly onTakenOver?: () => void;
  /**
   * Default: past STALE_LOCK_MS, so that a lock left by a holder that died where this process cannot see it (another
   * host) is broken rather than waited out.
   */
  readonly timeoutMs?: number;
}

export interface WaitForLockOptions extends AcquireOptions {
  /** How long to wait for another holder to finish. */
  readonly timeoutMs: number;
  /** Called once, when another process holds the lock and this one starts waiting: who holds it. */
  readonly onWait?: (holder: string) => void;
  /** The error thrown when the lock is still held after `timeoutMs`: who holds it. */
  readonly timedOut: (holder: string) => Error;
  /**
   * Makes the lock's directory again, for a caller that has just made it or found it (`--out`): another run that
   * made it too, then failed, removes it while empty, so a lock attempt finding it gone makes it again and tries
   * again (a few times). Given, ENOENT never means "run unlocked": the directory existed a moment ago.
   */
  readonly remakeDirectory?: () => Promise<void>;
}

/** How many times one wait makes the lock's directory again (`remakeDirectory`) before giving up with ENOENT. */
const DIRECTORY_REMAKES = 3;

/**
 * The lock at `path`, once any other holder has finished (or ended, or died and its lock went stale); undefined when
 * the directory cannot hold a lock file (missing without `remakeDirectory`, read-only, not this user's, full), where
 * the caller runs unlocked.
 */
export async function waitForLock(path: string, options: WaitForLockOptions): Promise<RotationLock | undefined> {
  const deadline = Date.now() + options.timeoutMs;
  let remakes = DIRECTORY_REMAKES;
  const attempt = async (): Promise<RotationLock | undefined> => {
    for (;;) {
      try {
        return await acquireRotationLock(path, options);
      } catch (error) {
        if (errnoOf(error) !== 'ENOENT' || options.remakeDirectory === undefined || remakes <= 0) throw error;
        remakes--;
        await options.remakeDirectory();
      }
    }
  };
  let lock: RotationLock | undefined;
  try {
    lock = await attempt();
  } catch (error) {
    const code = errnoOf(error);
    if (UNLOCKABLE_DIRECTORY.has(code) && !(code === 'ENOENT' && options.remakeDirectory !== undefined)) {
      return undefined;
    }
    throw error;
  }
  if (lock === undefined) options.onWait?.(await lockHolder(path));
  while (lock === undefined) {
    if (Date.now() >= deadline) throw options.timedOut(await lockHolder(path));
    await delay(LOCK_RETRY_MS);
    lock = await attempt();
  }
  return lock;
}

function errnoOf(error: unknown): string {
  return (error as NodeJS.ErrnoException | undefined)?.code ?? '';
}

/**
 * Who holds the lock, as its holder wrote it (token, host and pid), for the operator. Only said, never decided on: a
 * lock this user may not read (another user's run, 0600) is still waited for.
 */
export async function lockHolder(path: string): Promise<string> {
  const content = await contentOf(path);
  return (content === undefined ? '' : holderLine(content)) || 'unknown';
}

/**
 * Runs `action` holding the lock of the CA directory `dir`, waiting for another holder to finish: a command that
 * changes the directory (`ca rotate`, a `ca init` replacing files) must not interleave its writes with a replica's
 * rotation or another command's, which leaves a key from one and the certificate from the other.
 * MESHAUTH_ERR_CA_UNAVAILABLE (`directory_locked`) when the lock is still held after the timeout.
 */
export async function withRotationLock<T>(
  dir: string,
  action: () => Promise<T>,
  options: LockWaitOptions = {},
): Promise<T> {
  const path = join(dir, ROTATION_LOCK_FILE);
  const lock = await waitForLock(path, {
    timeoutMs: options.timeoutMs ?? STALE_LOCK_MS + 5_000,
    ...(options.onWait === undefined ? {} : { onWait: options.onWait }),
    ...(options.onHolderEnded === undefined ? {} : { onHolderEnded: options.onHolderEnded }),
    timedOut: (holder) =>
      new MeshauthError(
        'MESHAUTH_ERR_CA_UNAVAILABLE',
        `another process is still changing the CA directory ${dir} (${path} is held: ${holder}); ` +
          'try again once it has finished',
        { reason: 'directory_locked' },
      ),
  });
  // A directory that is missing or cannot be written to cannot be changed either: `action` fails on its own first
  // read or write, with the message naming its file that it always had (no CA here, a read-only mount, a full
  // disk), and one that only reads it runs as it did before it took the lock.
  if (lock === undefined) return action();
  try {
    return await action();
  } finally {
    if ((await lock.release()) === 'taken_over') options.onTakenOver?.();
  }
}
