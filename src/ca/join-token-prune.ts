// Removes join-token records (tokens/<sha256>.json, tokens/used/<sha256>.json) whose expiry passed more than a grace
// ago: nothing else ever deletes them. Replicas sharing the directory prune, spend and give back tokens at the same
// time, so a record that vanishes under a pass is no error. One record at a time over async calls, a bounded number
// per pass: a huge directory never holds the event loop. It never removes a record it cannot read.
import type { Dir } from 'node:fs';
import { opendir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../telemetry/index.js';
import { caPaths } from './ca-files.js';

/**
 * How long a record outlives its expiry. Until then a late presentation still answers token_expired (token_used for
 * a spent one), and a replica whose clock runs up to this much behind this one's already refuses the token as expired
 * before its record goes. After it the token answers token_unknown.
 */
export const JOIN_TOKEN_PRUNE_GRACE_MS = 60 * 60_000;
/** Records read per directory in one pass; a directory with more is walked on from there by the next pass. */
export const JOIN_TOKEN_PRUNE_MAX_RECORDS = 10_000;
export const JOIN_TOKEN_PRUNE_INTERVAL_MS = 60 * 60_000;
/** The next pass comes this soon when the bound stopped the last one before the end of a directory. */
export const JOIN_TOKEN_PRUNE_CATCH_UP_MS = 60_000;

/** What createJoinToken names a record; anything else in the directories (temporary files, used/) is not ours. */
const RECORD_NAME = /^[0-9a-f]{64}\.json$/;
/** Unreadable records are reported once per process each; past this many names, no longer one by one. */
const MAX_REPORTED_UNREADABLE = 1000;

export interface JoinTokenPruneOptions {
  readonly dir: string;
  readonly logger: Logger;
  readonly graceMs?: number;
  readonly maxRecordsPerPass?: number;
}

export interface JoinTokenPruneResult {
  /** Records this pass removed (one another replica removed first is not counted). */
  readonly removed: number;
  /** Records that could not be read or have no valid `expiresAt`: left in place. */
  readonly unreadable: number;
  /** The bound stopped the pass before the end of a directory; the next pass goes on from there. */
  readonly more: boolean;
}

/** One prune pass at a time per instance; it remembers where a bounded pass stopped and which records it reported. */
export class JoinTokenPruner {
  readonly #options: JoinTokenPruneOptions;
  readonly #directories: readonly string[];
  /**
   * Per directory: the entries the last pass walked past and left there, skipped by the next pass. Entries others
   * add or remove meanwhile shift it a little; what it skips by mistake is read in the next walk from the start.
   */
  readonly #resumeAt = new Map<string, number>();
  readonly #reported = new Set<string>();

  constructor(options: JoinTokenPruneOptions) {
    this.#options = options;
    const paths = caPaths(options.dir);
    this.#directories = [paths.tokens, paths.usedTokens];
  }

  /** Removes the records expired before `now` minus the grace; never rejects (a failure is logged). */
  async prune(now: Date, stopped: () => boolean = () => false): Promise<JoinTokenPruneResult> {
    const cutoff = now.getTime() - (this.#options.graceMs ?? JOIN_TOKEN_PRUNE_GRACE_MS);
    let removed = 0;
    let unreadable = 0;
    let more = false;
    for (const directory of this.#directories) {
      const walk = await this.#pruneDirectory(directory, cutoff, stopped);
      removed += walk.removed;
      unreadable += walk.unreadable;
      more ||= walk.more;
    }
    if (removed > 0) {
      this.#options.logger.info(
        { event: 'join_tokens_pruned', removed, more },
        'removed join-token records past their expiry and its grace',
      );
    }
    return { removed, unreadable, more };
  }

  async #pruneDirectory(directory: string, cutoff: number, stopped: () => boolean): Promise<JoinTokenPruneResult> {
    const maxRecords = this.#options.maxRecordsPerPass ?? JOIN_TOKEN_PRUNE_MAX_RECORDS;
    const skip = this.#resumeAt.get(directory) ?? 0;
    this.#resumeAt.delete(directory); // set again only when the bound stops this walk
    let walked = 0;
    let read = 0;
    let removed = 0;
    let unreadable = 0;
    let entries: Dir;
    try {
      // opendir reads the entries a few at a time: a directory of millions is never listed whole in memory.
      entries = await opendir(directory);
    } catch (error) {
      // used/ does not exist before the first spend: nothing to prune there.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') this.#warnFailed(directory, error);
      return { removed, unreadable, more: false };
    }
    try {
      for await (const entry of entries) {
        if (walked < skip || !RECORD_NAME.test(entry.name)) {
          walked += 1;
          continue;
        }
        if (read >= maxRecords || stopped()) {
          this.#resumeAt.set(directory, walked);
          return { removed, unreadable, more: true };
        }
        read += 1;
        const outcome = await this.#pruneRecord(join(directory, entry.name), cutoff);
        // A record removed (by this pass or another replica's) is no longer there for the next pass to skip.
        if (outcome === 'kept' || outcome === 'unreadable') walked += 1;
        if (outcome === 'removed') removed += 1;
        if (outcome === 'unreadable') unreadable += 1;
      }
    } catch (error) {
      // The directory refuses a removal (a read-only copy) or its reading: the next pass starts over.
      this.#warnFailed(directory, error);
    }
    return { removed, unreadable, more: false };
  }

  #warnFailed(directory: string, error: unknown): void {
    this.#options.logger.warn(
      { event: 'join_token_prune_failed', directory, err: error },
      'cannot remove expired join-token records; retrying at the next pass',
    );
  }

  /** Throws only when the record cannot be removed (the directory refuses it): the pass stops there. */
  async #pruneRecord(file: string, cutoff: number): Promise<'removed' | 'kept' | 'gone' | 'unreadable'> {
    let expiresAt: number;
    try {
      const record: unknown = JSON.parse(await readFile(file, 'utf8'));
      expiresAt = expiryOf(record);
    } catch (error) {
      // Removed by another replica's pass since the listing, or spent since (it is in used/ now).
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
      // Kept: a record we cannot read says nothing about its token's expiry, and may be an operator's to look at. Its
      // token cannot be spent either way.
      this.#reportUnreadable(file, error);
      return 'unreadable';
    }
    if (!(expiresAt < cutoff)) return 'kept';
    try {
      await unlink(file);
      return 'removed';
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'gone'; // another replica removed it first
      throw error;
    }
  }

  #reportUnreadable(file: string, error: unknown): void {
    if (this.#reported.has(file) || this.#reported.size >= MAX_REPORTED_UNREADABLE) return;
    this.#reported.add(file);
    this.#options.logger.warn(
      { event: 'join_token_record_unreadable', file, err: error },
      'join-token record cannot be read or has no valid expiresAt; left in place (remove it by hand if it is not needed)',
    );
  }
}

/** `expiresAt` of a stored record, in ms; throws for anything that is not a record with a valid one. */
function expiryOf(record: unknown): number {
  const expiresAt =
    typeof record === 'object' && record !== null ? (record as { expiresAt?: unknown }).expiresAt : undefined;
  const ms = typeof expiresAt === 'string' ? Date.parse(expiresAt) : Number.NaN;
  if (Number.isNaN(ms)) throw new Error('no valid expiresAt');
  return ms;
}

export interface JoinTokenPruning {
  /** Stops the timer and waits for a pass in progress, which stops at its next record. */
  close(): Promise<void>;
}

export interface JoinTokenPruningOptions extends JoinTokenPruneOptions {
  readonly now: () => Date;
  readonly intervalMs?: number;
  readonly catchUpMs?: number;
}

/**
 * A pass now, then one per interval (sooner while a bounded pass left work), never two at once. The timer is unref'd:
 * pruning never keeps a process alive.
 */
export function startJoinTokenPruning(options: JoinTokenPruningOptions): JoinTokenPruning {
  const pruner = new JoinTokenPruner(options);
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const run = (): void => {
    timer = undefined;
    running = pruner
      .prune(options.now(), () => closed)
      // prune() logs its own failures; only a throwing logger could get here, and it must not stop the timer.
      .catch(() => ({ more: false }))
      .then((result) => {
        running = undefined;
        if (closed) return;
        const delay = result.more
          ? (options.catchUpMs ?? JOIN_TOKEN_PRUNE_CATCH_UP_MS)
          : (options.intervalMs ?? JOIN_TOKEN_PRUNE_INTERVAL_MS);
        timer = setTimeout(run, delay);
        timer.unref();
      });
  };
  run();
  return {
    close: async () => {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      await running;
    },
  };
}
