// The parsing of /proc/PID/stat and of an identity read back from a file, and the cases where a recorded process is
// not judged at all: another machine, boot or PID namespace (there its pid names another process or none), or a
// judge that has no identity (not Linux). No process is looked at here: each of these answers before any look.
import { describe, expect, it } from 'vitest';
import {
  type ProcessIdentity,
  parseProcStat,
  processIdentityOf,
  processState,
} from '../../../src/platform/process-identity.js';

/** A stat line with `comm` as the name and `start` as field 22 (the fields between are those of a real line). */
const statLine = (pid: string, comm: string, state: string, start: string) =>
  `${pid} (${comm}) ${state} 1 ${pid} ${pid} 0 -1 4194560 1029 0 0 0 2 1 0 0 20 0 1 0 ${start} 17 3 18 0 0\n`;

describe('parseProcStat', () => {
  it.each([
    ['ok/a plain name', statLine('4242', 'node', 'S', '4146667'), { pid: 4242, state: 'S', start: '4146667' }],
    ['ok/a name with spaces and parentheses', statLine('7', 'a) (b c)', 'R', '9'), { pid: 7, state: 'R', start: '9' }],
    ['ok/a zombie', statLine('12', 'sh', 'Z', '123456789012'), { pid: 12, state: 'Z', start: '123456789012' }],
  ])('%s', (_name, text, expected) => {
    expect(parseProcStat(text)).toEqual(expected);
  });

  it.each([
    ['fail/empty', ''],
    ['fail/no name', '4242 S 1 2 3'],
    ['fail/cut before field 22', '4242 (node) S 1 4242 4242 0 -1 4194560'],
    ['fail/pid not a number', statLine('x', 'node', 'S', '1')],
    ['fail/pid 0', statLine('0', 'node', 'S', '1')],
    ['fail/start not a number', statLine('4242', 'node', 'S', '-1')],
    ['fail/state not one letter', statLine('4242', 'node', 'SS', '1')],
  ])('%s → undefined', (_name, text) => {
    expect(parseProcStat(text)).toBeUndefined();
  });
});

describe('processState without a look', () => {
  const judge: ProcessIdentity = {
    boot: '0c030c5a-e667-48d2-ae47-1e2c00b8c279',
    pidNamespace: 'pid:[4026531836]',
    pid: 100,
    start: '500',
  };
  it.each([
    ['another boot or machine', { ...judge, boot: 'ffffffff-0000-0000-0000-000000000000', pid: 101 }],
    [
      'another PID namespace (a container of the same pod: same host name)',
      { ...judge, pidNamespace: 'pid:[4026532000]' },
    ],
    ['another time namespace (start times read shifted)', { ...judge, timeNamespace: 'time:[4026532001]' }],
    ['a record with a time namespace, a judge without one', { ...judge, pid: 1, timeNamespace: 'time:[1]' }],
    ['a pid that is no pid', { ...judge, pid: 0 }],
    ['a negative pid (a process group)', { ...judge, pid: -1 }],
  ])('ok/%s → unknown, never ended', (_name, recorded) => {
    expect(processState(recorded, judge)).toBe('unknown');
  });

  it('ok/a record without a time namespace (an earlier meshauth), a judge with one → unknown', () => {
    expect(processState({ ...judge, pid: 1 }, { ...judge, timeNamespace: 'time:[4026531834]' })).toBe('unknown');
  });

  it('ok/a judge with no identity (not Linux) → unknown', () => {
    expect(processState(judge, undefined)).toBe('unknown');
  });
});

describe('processIdentityOf', () => {
  const identity: ProcessIdentity = { boot: 'b', pidNamespace: 'pid:[1]', pid: 7, start: '9' };
  it('ok/every field, others ignored → the identity alone', () => {
    expect(processIdentityOf({ ...identity, host: 'builder-7' })).toEqual(identity);
  });

  it('ok/a time namespace, when recorded, is kept', () => {
    const timed = { ...identity, timeNamespace: 'time:[4026531834]' };
    expect(processIdentityOf(timed)).toEqual(timed);
  });

  it.each<[string, unknown]>([
    ['fail/not an object', 'pid 7'],
    ['fail/null', null],
    ['fail/no start (a record of another shape)', { ...identity, start: undefined }],
    ['fail/start a number', { ...identity, start: 9 }],
    ['fail/pid a string', { ...identity, pid: '7' }],
    ['fail/pid not an integer', { ...identity, pid: 7.5 }],
    ['fail/time namespace not a string', { ...identity, timeNamespace: 4026531834 }],
  ])('%s → undefined', (_name, value) => {
    expect(processIdentityOf(value)).toBeUndefined();
  });
});
