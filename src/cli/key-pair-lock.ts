// The lock that keeps commands from writing one key-and-chain pair at once: two `cert renew` runs (two cron jobs, a
// timer and a manual run) each authenticated with the old pair and each wrote its own new key and chain, and their
// renames could interleave into a key of one run beside the chain of the other, a pair that authenticates nowhere.
// The lock file sits beside the key and is the CA directory's lock (rotation-lock.ts): exclusive creation, stale
// when its mtime is old, broken under a second lock, and broken at once when the process that holds it has ended
// on this machine (a `cert renew` killed by a cron job's timeout). It must not read or write the pair itself.
import { utimes } from 'node:fs/promises';
import { logHolderEnded } from '../ca/lock-holder.js';
import { type EndedHolder, STALE_LOCK_MS, waitForLock } from '../ca/rotation-lock.js';
import { MeshauthError } from '../errors/index.js';

/** The lock of the pair whose key is `keyFile`: `web.key.lock` beside `web.key`. */
export function keyPairLockPath(keyFile: string): string {
  return `${keyFile}.lock`;
}

export interface KeyPairLock {
  /**
   * Throws unless this process still holds the lock. Called just before the files are replaced: a holder frozen past
   * STALE_LOCK_MS (a stopped process, a suspended machine) has had its lock broken, and another run may be writing.
   */
  assertHeld(): Promise<void>;
}

export interface KeyPairLockOptions {
  /** Called once, when another process holds the lock and this one starts waiting: who holds it. */
  readonly onWait?: (holder: string) => void;
  /**
   * How long to wait for the lock. Default: past twice STALE_LOCK_MS, so that both a live holder (whose CA request
   * may take most of a minute under load) and one that died holding it (broken once stale) are waited out.
   */
  readonly timeoutMs?: number;
  /** How often a holder refreshes the lock's mtime. Default: a sixth of STALE_LOCK_MS. */
  readonly heartbeatMs?: number;
  /** Makes the key's directory again when a lock attempt finds it removed (see WaitForLockOptions). */
  readonly remakeDirectory?: () => Promise<void>;
  /** Called when this process broke the lock of a holder that had ended. Default: one log line on stderr. */
  readonly onHolderEnded?: (holder: EndedHolder) => void | Promise<void>;
}

/**
 * Says on stderr that the command waits for another one writing the pair (stdout is the command's answer): the
 * `onWait` of every command that takes the lock.
 */
export function sayWaiting(keyFile: string): (holder: string) => void {
  return (holder) =>
    process.stderr.write(
      `meshauth: waiting for another process writing ${keyFile} and its certificate (${keyPairLockPath(keyFile)}: ` +
        `${holder}); a lock left by a process that died is broken at once from the same boot, PID and time ` +
        `namespace, after ${STALE_LOCK_MS / 1000} s without a heartbeat otherwise\n`,
    );
}

const UNLOCKED: KeyPairLock = { assertHeld: async () => undefined };

/**
 * Runs `action` holding the lock of the pair whose key is `keyFile`, after any other holder has finished. `action`
 * must read the pair itself: what it read before the lock may be the half-written pair of the run it waited for.
 */
export async function withKeyPairLock<T>(
  keyFile: string,
  action: (lock: KeyPairLock) => Promise<T>,
  options: KeyPairLockOptions = {},
): Promise<T> {
  const path = keyPairLockPath(keyFile);
  // Any other holder finishes, ends (its lock broken at once) or goes stale first.
  const lock = await waitForLock(path, {
    timeoutMs: options.timeoutMs ?? 2 * STALE_LOCK_MS + 5_000,
    ...(options.onWait === undefined ? {} : { onWait: options.onWait }),
    ...(options.remakeDirectory === undefined ? {} : { remakeDirectory: options.remakeDirectory }),
    onHolderEnded:
      options.onHolderEnded ??
      (async (holder) => {
        // One line on stderr (stdout is the command's answer); the logger is loaded only by a command that meets
        // an ended holder.
        const { createLogger } = await import('../telemetry/index.js');
        const fields = { event: 'key_pair_lock_broken', lock: path, key: keyFile };
        logHolderEnded(createLogger({ name: 'cli' }), fields)(holder);
      }),
    timedOut: (holder) => locked(keyFile, path, holder),
  });
  // A directory this user cannot create a file in: no command can replace the pair there either (its staged files
  // go beside it), so `action` runs unlocked and fails, or only reads, as it did before the lock, with a message that
  // names the key or chain, not a lock file the user never asked for.
  if (lock === undefined) return action(UNLOCKED);
  const held = () => lock.isHeld().catch(() => false);
  // A live holder keeps its lock fresh: a renewal waiting on a slow CA is not taken for one that died.
  const heartbeat = setInterval(
    () => {
      void held()
        .then((ours) => (ours ? utimes(path, new Date(), new Date()) : undefined))
        .catch(() => undefined);
    },
    options.heartbeatMs ?? STALE_LOCK_MS / 6,
  );
  heartbeat.unref();
  try {
    return await action({
      assertHeld: async () => {
        if (!(await held())) throw lockLost(keyFile, path);
      },
    });
  } finally {
    clearInterval(heartbeat);
    await lock.release();
  }
}

/**
 * A pair whose lock another process holds past the wait: exit code 1 (the EBUSY cause), as for any failure that
 * running again later mends.
 */
function locked(keyFile: string, path: string, holder: string): MeshauthError {
  return new MeshauthError(
    'MESHAUTH_ERR_FILE_UNWRITABLE',
    `cannot write ${keyFile}: another process is still writing it (${path} is held: ${holder}); ` +
      'try again once it has finished',
    { reason: 'key_pair_locked', cause: busy(path) },
  );
}

function lockLost(keyFile: string, path: string): MeshauthError {
  return new MeshauthError(
    'MESHAUTH_ERR_FILE_UNWRITABLE',
    `cannot write ${keyFile}: this process held ${path} so long that another one broke it as stale and may be ` +
      'writing the pair now; nothing was written (the certificate just issued is not used): run the command again',
    { reason: 'key_pair_lock_lost', cause: busy(path) },
  );
}

function busy(path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`EBUSY: ${path} is held by another process`), { code: 'EBUSY', path });
}
