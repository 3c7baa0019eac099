// isHolderAlive: whether the `ca init` that wrote a marker may still be writing. A writer this process can judge
// decides at once (this process itself: only while it holds that claim); one it cannot, or a marker without one, is
// judged by its age.
import { describe, expect, it } from 'vitest';
import { type HolderCheck, type InitHolder, isHolderAlive } from '../../../src/ca/init-claim.js';
import { STALE_LOCK_MS } from '../../../src/ca/rotation-lock.js';
import type { ProcessIdentity } from '../../../src/platform/index.js';

const SELF: ProcessIdentity = {
  boot: '0c030c5a-e667-48d2-ae47-1e2c00b8c279',
  pidNamespace: 'pid:[4026531836]',
  pid: 100,
  start: '500',
};
const WRITER: ProcessIdentity = { ...SELF, pid: 4242, start: '7000' };
const holder = (fields: Partial<InitHolder> = {}): InitHolder => ({
  token: 'a'.repeat(32),
  writer: WRITER,
  host: 'builder-7',
  begun: true,
  ...fields,
});
const check = (fields: Partial<HolderCheck> = {}): HolderCheck => ({
  self: SELF,
  heldHere: () => false,
  stateOf: () => 'ended',
  ageMs: 1_000,
  ...fields,
});
/** A look that must not happen: the rule answers before it. */
const noLook = (): never => {
  throw new Error('looked at a process');
};

describe('isHolderAlive', () => {
  it.each<[string, InitHolder | undefined, Partial<HolderCheck>, boolean]>([
    [
      'ok/same machine, its process runs → alive',
      holder(),
      { stateOf: (w) => (w.pid === 4242 && w.start === '7000' ? 'running' : 'ended') },
      true,
    ],
    ['ok/same machine, its process has ended → dead at once', holder(), {}, false],
    ['ok/same machine, ended, even 1 ms old → dead', holder(), { ageMs: 1 }, false],
    [
      'ok/same machine, pid reused by another process (different start) → dead',
      holder(),
      // What processState says when the pid answers but /proc gives another start time.
      { stateOf: (w) => (w.start === '7000' ? 'ended' : 'running') },
      false,
    ],
    [
      'ok/same machine, running, older than a stale lock → still alive (its process says so)',
      holder(),
      { stateOf: () => 'running', ageMs: STALE_LOCK_MS * 10 },
      true,
    ],
    ['ok/this process, claim held → alive', holder({ writer: SELF }), { heldHere: () => true, stateOf: noLook }, true],
    [
      'ok/this process, claim no longer held (a run here that failed) → dead',
      holder({ writer: SELF }),
      { stateOf: noLook },
      false,
    ],
    [
      'ok/this pid, another start (an earlier process of this pid) → judged as any other: ended → dead',
      holder({ writer: { ...SELF, start: '499' } }),
      { heldHere: () => true },
      false,
    ],
    ['ok/unknown (another machine or PID namespace), young → alive', holder(), { stateOf: () => 'unknown' }, true],
    ['ok/unknown, exactly stale → dead', holder(), { stateOf: () => 'unknown', ageMs: STALE_LOCK_MS }, false],
    [
      'ok/a marker without a writer (no /proc where it was written), young → alive',
      holder({ writer: undefined }),
      { stateOf: noLook },
      true,
    ],
    [
      'ok/a marker without a writer, stale → dead',
      holder({ writer: undefined }),
      { stateOf: noLook, ageMs: STALE_LOCK_MS + 1 },
      false,
    ],
    [
      'ok/this process has no identity (no /proc): unknown, young → alive',
      holder(),
      { self: undefined, stateOf: () => 'unknown' },
      true,
    ],
    ['ok/unreadable marker, young → alive', undefined, { stateOf: noLook }, true],
    ['ok/unreadable marker, stale → dead', undefined, { stateOf: noLook, ageMs: STALE_LOCK_MS + 1 }, false],
  ])('%s', (_name, marker, fields, alive) => {
    expect(isHolderAlive(marker, check(fields))).toBe(alive);
  });
});
