// Who holds a lock file (rotation-lock.ts), as its holder writes it and another process reads it: a random token no
// other holder has, the host name and pid an operator reads, and, where /proc gives one, the holder's process
// identity, by which a process in the same boot, PID and time namespace tells that the holder has ended. Pure apart
// from reading /proc through processState; it must not create, remove or wait for lock files.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { type ProcessIdentity, processIdentityOf, processState, thisProcess } from '../platform/index.js';
import type { Logger } from '../telemetry/index.js';

/** A lock broken because the process that held it had ended. */
export interface EndedHolder {
  readonly holderPid: number;
  /** The holder's host name as it wrote it: for the operator, not judged on (boot and namespaces are). */
  readonly holderHost: string;
  /** How long before the break its holder last refreshed it: under STALE_LOCK_MS, it would have been waited out. */
  readonly lockAgeMs: number;
}

/** A new holder's content: the operator's line (token, host, pid), then the process identity when there is one. */
export function holderContent(): string {
  const line = `${randomBytes(16).toString('hex')} ${hostname()} pid ${process.pid}\n`;
  const self = thisProcess();
  return self === undefined ? line : `${line}${JSON.stringify(self)}\n`;
}

/** The operator's line of a lock's content: token, host and pid. */
export function holderLine(content: string): string {
  return content.split('\n')[0]?.trim() ?? '';
}

/**
 * The holder a lock's content names when it has provably ended; undefined when the content carries no identity (an
 * older meshauth, a process without /proc), names a process that runs, or one this process cannot judge.
 */
export function endedHolder(content: string, lockAgeMs: number): EndedHolder | undefined {
  const [line = '', identityLine] = content.split('\n');
  if (identityLine === undefined || identityLine === '') return undefined;
  let identity: ProcessIdentity | undefined;
  try {
    identity = processIdentityOf(JSON.parse(identityLine));
  } catch {
    return undefined;
  }
  if (identity === undefined || processState(identity, thisProcess()) !== 'ended') return undefined;
  return { holderPid: identity.pid, holderHost: line.split(' ')[1] ?? 'unknown', lockAgeMs: Math.round(lockAgeMs) };
}

/** What a broken lock's log line says of it: its event, the lock, and what the lock guards (`key`, for a pair). */
export interface BrokenLockFields extends Record<string, unknown> {
  readonly event: string;
  readonly lock: string;
}

/** An `onHolderEnded` that writes one structured warn line: `fields`, the reason and who held the lock. */
export function logHolderEnded(logger: Logger, fields: BrokenLockFields): (holder: EndedHolder) => void {
  return (holder) =>
    logger.warn(
      { ...fields, reason: 'holder_ended', ...holder },
      `broke ${fields.lock}: the process that held it (pid ${holder.holderPid}) has ended`,
    );
}
