// Which `ca init` is writing a CA directory, and whether the last one finished: the marker `.ca-init`, created
// exclusively before anything is written, marked `begun` before the first file of the directory changes and removed
// once the last one is in place. A begun marker whose writer is gone means a half-made CA (killed, a full disk),
// which the next `ca init` replaces without --force; one that never began leaves the directory as it was, a CA or
// none. It decides who writes and whether an init finished; what a CA is made of is store.ts's.
import { randomBytes } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { MeshauthError } from '../errors/index.js';
import {
  type ProcessIdentity,
  type ProcessState,
  processIdentityOf,
  processState,
  readRegularFile,
  sameProcess,
  thisProcess,
} from '../platform/index.js';
import { caPaths, createFileExclusive, PRIVATE_FILE_MODE, writeFileAtomic } from './ca-files.js';
import { acquireRotationLock, STALE_LOCK_MS } from './rotation-lock.js';

/** Who wrote a marker: enough to tell, from the same machine, whether that process still runs. */
export interface InitHolder {
  /** Random per run: the marker is this run's only while it holds this token. */
  readonly token: string;
  /**
   * The writing process (thisProcess()); undefined where it has none (no /proc), as the marker must be written
   * anyway. A pid alone is not enough: reused by an unrelated process, it kept a dead run's marker alive.
   */
  readonly writer: ProcessIdentity | undefined;
  /** For the operator reading a refusal. */
  readonly host: string;
  /** The run has begun changing the directory's files: stopped now, it leaves a half-made CA. */
  readonly begun: boolean;
}

/** What `isHolderAlive` needs to know about this process and the marker, passed in so the rule stays pure. */
export interface HolderCheck {
  /** This process (thisProcess()); undefined where it has no identity. */
  readonly self: ProcessIdentity | undefined;
  /** Whether this process still holds the claim of `token` (a run in this process that failed holds none). */
  readonly heldHere: (token: string) => boolean;
  /** Whether the writer still runs, judged from this process (processState). */
  readonly stateOf: (writer: ProcessIdentity) => ProcessState;
  /** Milliseconds since the marker was last written. */
  readonly ageMs: number;
}

/**
 * Whether the run that wrote the marker may still be writing. A writer this process can judge answers at once, so a
 * user who runs `ca init` again after a kill gets a CA without waiting. One it cannot (another host or container on
 * a shared volume, no /proc), or a marker that does not parse, is alive until it is as old as a stale rotation lock,
 * the same rule.
 */
export function isHolderAlive(holder: InitHolder | undefined, check: HolderCheck): boolean {
  const writer = holder?.writer;
  if (holder === undefined || writer === undefined) return check.ageMs < STALE_LOCK_MS;
  // This very process runs, yet a claim of it that is no longer held is a run that failed here.
  if (check.self !== undefined && sameProcess(writer, check.self)) return check.heldHere(holder.token);
  switch (check.stateOf(writer)) {
    case 'running':
      return true;
    case 'ended':
      return false;
    case 'unknown':
      return check.ageMs < STALE_LOCK_MS;
  }
}

export interface InitClaim {
  /** The directory is what a `ca init` that did not finish left: its files are replaced, with --force or without. */
  readonly interrupted: boolean;
  /** Whose marker this run took over (a run that died), for the notice that its files are replaced. */
  readonly takenFrom: InitHolder | undefined;
  /** Says in the marker that this run now changes the directory; call it before the first change. */
  begin(): Promise<void>;
  /** Removes the marker: the new CA is complete, or nothing of it reached the directory. */
  release(): Promise<void>;
  /** Leaves the marker for the next `ca init`: this run stops with the directory half-made. */
  abandon(): void;
}

/**
 * The right to write a new CA into `dir` (which exists). A marker of a run that is gone is taken over; one of a run
 * still writing is refused with MESHAUTH_ERR_CA_EXISTS (reason `init_in_progress`): that run makes the CA.
 */
export async function claimInit(dir: string): Promise<InitClaim> {
  const marker = caPaths(dir).initMarker;
  const holder: InitHolder = {
    token: randomBytes(16).toString('hex'),
    writer: thisProcess(),
    host: hostname(),
    begun: false,
  };
  const content = markerText(holder);
  // Held from before the marker exists: another run in this process may read it the moment it does.
  claimsHeld.add(holder.token);
  try {
    if (await createFileExclusive(marker, content, PRIVATE_FILE_MODE)) {
      return claim(marker, { holder, content, interrupted: false, takenFrom: undefined });
    }
    // Two runs finding the same dead marker must not both replace it: judged and replaced under a lock of its own,
    // held for a read and a rename. A run that finds it held refuses as it would a live marker.
    const lock = await acquireRotationLock(join(dir, TAKEOVER_LOCK_FILE));
    if (lock === undefined) throw takeoverHeld(dir);
    try {
      const found = readMarker(marker);
      if (found === undefined) {
        // The other run finished meanwhile: the caller finds its CA complete and refuses.
        if (await createFileExclusive(marker, content, PRIVATE_FILE_MODE)) {
          return claim(marker, { holder, content, interrupted: false, takenFrom: undefined });
        }
        throw initInProgress(dir, undefined);
      }
      if (isHolderAlive(found.holder, hereAt(found.ageMs))) throw initInProgress(dir, found.holder);
      // A marker this version did not write says nothing of the files: they are judged as they are.
      const interrupted = found.holder?.begun === true;
      // Begun as the dead run's was: this run stopped before its own begin() must still leave the directory known
      // for a half-made one, or the next run refused it as a CA.
      const taken = { ...holder, begun: interrupted };
      const takenContent = markerText(taken);
      await writeFileAtomic(marker, takenContent, PRIVATE_FILE_MODE);
      return claim(marker, { holder: taken, content: takenContent, interrupted, takenFrom: found.holder });
    } finally {
      await lock.release();
    }
  } catch (error) {
    claimsHeld.delete(holder.token);
    throw error;
  }
}

/** Whether `dir` holds a marker (a `ca init` writing it, or one that did not finish). */
export function initMarkerPresent(dir: string): boolean {
  try {
    readRegularFile(caPaths(dir).initMarker, MAX_MARKER_BYTES);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/** Taken for a few milliseconds by a run replacing a dead marker (rotation-lock.ts's rules, staleness included). */
const TAKEOVER_LOCK_FILE = '.ca-init.takeover';
/** A marker holds one JSON line of a few hundred bytes. */
const MAX_MARKER_BYTES = 4096;

/** Tokens of the claims this process holds. */
const claimsHeld = new Set<string>();

interface ClaimState {
  readonly holder: InitHolder;
  readonly content: string;
  readonly interrupted: boolean;
  readonly takenFrom: InitHolder | undefined;
}

function claim(marker: string, { holder, content, interrupted, takenFrom }: ClaimState): InitClaim {
  let current = content;
  return {
    interrupted,
    takenFrom,
    begin: async () => {
      const begun = markerText({ ...holder, begun: true });
      await writeFileAtomic(marker, begun, PRIVATE_FILE_MODE);
      current = begun;
    },
    release: async () => {
      // Only while it is still this run's: a run on another host that took it as stale has it now.
      if (readMarker(marker)?.content === current) await rm(marker, { force: true });
      claimsHeld.delete(holder.token);
    },
    abandon: () => {
      claimsHeld.delete(holder.token);
    },
  };
}

interface FoundMarker {
  readonly content: string;
  readonly holder: InitHolder | undefined;
  readonly ageMs: number;
}

/** The marker as found; undefined when there is none. Anything unreadable as a holder has holder undefined. */
function readMarker(marker: string): FoundMarker | undefined {
  let content: string;
  let mtimeMs: number;
  try {
    const file = readRegularFile(marker, MAX_MARKER_BYTES);
    content = file.bytes.toString('utf8');
    mtimeMs = Number(file.stats.mtimeMs);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // A link to nowhere reads as no file, yet no marker can be created beside it.
    if (code === 'ENOENT' && !lstatSync(marker, { throwIfNoEntry: false })) return undefined;
    // Not a file (a directory, a link), or far too large: no run wrote it, and it has no age that would ever let a
    // run take it over, so it is named for the user to remove.
    if (code === 'ENOENT' || code === 'ENOTREG' || code === 'EFBIG' || code === 'ELOOP') throw notAMarker(marker);
    throw error;
  }
  return { content, holder: parseHolder(content), ageMs: Date.now() - mtimeMs };
}

function markerText(holder: InitHolder): string {
  return `${JSON.stringify(holder)}\n`;
}

/**
 * The holder a marker names; undefined for text that is not a marker. A writer that is not an identity is read as
 * none, judged by age: so is the marker of an earlier version, which named its writer by a pid alone.
 */
function parseHolder(content: string): InitHolder | undefined {
  let value: unknown;
  try {
    value = JSON.parse(content);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { token, writer, host, begun } = value as Record<string, unknown>;
  if (typeof token !== 'string' || typeof host !== 'string') return undefined;
  return { token, writer: processIdentityOf(writer), host, begun: begun === true };
}

function hereAt(ageMs: number): HolderCheck {
  const self = thisProcess();
  return {
    self,
    heldHere: (token) => claimsHeld.has(token),
    stateOf: (writer) => processState(writer, self),
    ageMs,
  };
}

/** The takeover lock is held: another run is judging the same marker, for milliseconds, or died doing so. */
function takeoverHeld(dir: string): MeshauthError {
  const lock = join(dir, TAKEOVER_LOCK_FILE);
  return new MeshauthError(
    'MESHAUTH_ERR_CA_EXISTS',
    `another \`meshauth ca init\` is taking over the marker of an unfinished one in ${dir} (${lock} is held): run ` +
      `\`meshauth ca init\` again in a moment; a lock left by a run that died is broken at once by a run in the same ` +
      `boot, PID and time namespace, after ${Math.round(STALE_LOCK_MS / 1000)} s otherwise`,
    { reason: 'init_in_progress' },
  );
}

function notAMarker(marker: string): MeshauthError {
  return new MeshauthError(
    'MESHAUTH_ERR_CA_EXISTS',
    `${marker} is not a marker \`meshauth ca init\` wrote (not a regular file, or far too large), so no run can ` +
      'tell whether the directory holds a half-made CA: remove it and run `meshauth ca init` again',
    { reason: 'init_in_progress' },
  );
}

function initInProgress(dir: string, holder: InitHolder | undefined): MeshauthError {
  const pid = holder?.writer === undefined ? '' : `pid ${holder.writer.pid} `;
  const who = holder === undefined ? '' : ` (${pid}on ${holder.host})`;
  return new MeshauthError(
    'MESHAUTH_ERR_CA_EXISTS',
    `another \`meshauth ca init\`${who} is creating a CA in ${dir}: the CA is there once it has finished. If no such ` +
      `process runs any more (it ran where this one cannot see it, on another host or in another container, and ` +
      `stopped), run \`meshauth ca init\` again a minute after it began, or delete ${caPaths(dir).initMarker} and ` +
      'run it again',
    { reason: 'init_in_progress' },
  );
}
