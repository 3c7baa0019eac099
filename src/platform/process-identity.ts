// A process as another process on the same machine can recognise it later: its pid, the PID namespace that pid means
// something in, the boot it ran in and its start time (a pid is reused, by the next boot as much as by this one). Only
// Linux tells these (/proc); elsewhere no process has one, and none is ever judged ended. It must not decide what to
// do about a process that has ended.
import { readlinkSync } from 'node:fs';
import { readRegularFile } from './regular-file.js';

export interface ProcessIdentity {
  /** /proc/sys/kernel/random/boot_id: differs on another machine and after a reboot. */
  readonly boot: string;
  /** /proc/self/ns/pid, e.g. `pid:[4026531836]`: a container in the same pod shares the host name, not this. */
  readonly pidNamespace: string;
  readonly pid: number;
  /** Clock ticks from boot to the process's start (/proc/PID/stat field 22), as a decimal string. */
  readonly start: string;
  /**
   * /proc/self/ns/time, e.g. `time:[4026531834]`: the kernel shifts every start time it reports by the reader's time
   * namespace, so a start read in another one differs for the same process. Absent on kernels before 5.6.
   */
  readonly timeNamespace?: string;
}

export type ProcessState =
  /** The process recorded still runs. */
  | 'running'
  /** No process has the pid, or the one that has it is another (started at another time), or it is a zombie. */
  | 'ended'
  /** This process cannot tell: another machine, boot or PID namespace, no /proc, or a /proc it may not read. */
  | 'unknown';

/** Fields of /proc/PID/stat this module reads. */
export interface ProcStat {
  readonly pid: number;
  /** R, S, D, Z (zombie), X (dead), … */
  readonly state: string;
  readonly start: string;
}

/**
 * Parses /proc/PID/stat: `pid (comm) state ppid … starttime …`. The command name may hold spaces and parentheses, so
 * the fields are counted after the last `)`. Undefined for text not of that shape.
 */
export function parseProcStat(text: string): ProcStat | undefined {
  const open = text.indexOf(' (');
  const close = text.lastIndexOf(')');
  if (open < 1 || close < open) return undefined;
  const pid = Number(text.slice(0, open));
  const fields = text
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  // Field 3 (state) is the first after the name, field 22 (starttime) the twentieth.
  const state = fields[0];
  const start = fields[19];
  if (!Number.isSafeInteger(pid) || pid < 1 || state === undefined || !/^[A-Za-z]$/.test(state)) return undefined;
  if (start === undefined || !/^\d{1,20}$/.test(start)) return undefined;
  return { pid, state, start };
}

/** `value` (a record read back from a file) as an identity; undefined unless it has every field, each of its type. */
export function processIdentityOf(value: unknown): ProcessIdentity | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { boot, pidNamespace, pid, start } = value as Record<string, unknown>;
  if (typeof boot !== 'string' || typeof pidNamespace !== 'string' || typeof start !== 'string') return undefined;
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid)) return undefined;
  const { timeNamespace } = value as Record<string, unknown>;
  if (timeNamespace === undefined) return { boot, pidNamespace, pid, start };
  return typeof timeNamespace === 'string' ? { boot, pidNamespace, pid, start, timeNamespace } : undefined;
}

/** Whether two identities name the same process (same boot, namespaces, pid and start). */
export function sameProcess(a: ProcessIdentity, b: ProcessIdentity): boolean {
  return (
    a.boot === b.boot &&
    a.pidNamespace === b.pidNamespace &&
    a.timeNamespace === b.timeNamespace &&
    a.pid === b.pid &&
    a.start === b.start
  );
}

let self: ProcessIdentity | null | undefined;

/** This process's identity; undefined where /proc does not give it (not Linux, or a /proc of another namespace). */
export function thisProcess(): ProcessIdentity | undefined {
  if (self === undefined) self = readThisProcess() ?? null;
  return self ?? undefined;
}

function readThisProcess(): ProcessIdentity | undefined {
  try {
    const boot = readProcText('/proc/sys/kernel/random/boot_id').trim();
    const pidNamespace = readlinkSync('/proc/self/ns/pid');
    const stat = parseProcStat(readProcText('/proc/self/stat'));
    // A /proc mounted from another PID namespace names another process (or none) as self: its pids are not ours.
    if (boot === '' || stat === undefined || stat.pid !== process.pid) return undefined;
    const timeNamespace = readLinkOrUndefined('/proc/self/ns/time');
    const identity = { boot, pidNamespace, pid: process.pid, start: stat.start };
    return timeNamespace === undefined ? identity : { ...identity, timeNamespace };
  } catch {
    return undefined;
  }
}

function readLinkOrUndefined(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

/**
 * Whether the process `recorded` still runs, judged by `judge` (this process). Only a process of the same boot, PID
 * namespace and time namespace is judged: elsewhere the pid names another process or none, or its start time reads
 * shifted, and a live process there must never be taken for an ended one. Ended only on proof: no such pid (ESRCH),
 * a zombie, or another start time.
 */
export function processState(recorded: ProcessIdentity, judge: ProcessIdentity | undefined): ProcessState {
  if (judge === undefined || recorded.boot !== judge.boot || recorded.pidNamespace !== judge.pidNamespace) {
    return 'unknown';
  }
  // A record without one (a kernel before 5.6, or an earlier meshauth) is judged only by a judge without one either.
  if (recorded.timeNamespace !== judge.timeNamespace) return 'unknown';
  if (!Number.isSafeInteger(recorded.pid) || recorded.pid < 1) return 'unknown';
  try {
    process.kill(recorded.pid, 0);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') return 'ended';
    // EPERM: it exists and is another user's.
    if (code !== 'EPERM') return 'unknown';
  }
  let stat: ProcStat | undefined;
  try {
    stat = parseProcStat(readProcText(`/proc/${recorded.pid}/stat`));
  } catch {
    // Gone between the two looks (the next look says ESRCH), or hidden (hidepid): not proof either way.
    return 'unknown';
  }
  if (stat === undefined || stat.pid !== recorded.pid) return 'unknown';
  // A zombie has run its last instruction: all its writes are done; only its parent has not reaped it yet.
  if (stat.state === 'Z' || stat.state === 'X') return 'ended';
  return stat.start === recorded.start ? 'running' : 'ended';
}

/** A /proc file reports no size: read to its end, bounded (a stat line is a few hundred bytes). */
function readProcText(path: string): string {
  return readRegularFile(path, PROC_FILE_MAX_BYTES).bytes.toString('utf8');
}

const PROC_FILE_MAX_BYTES = 4096;
