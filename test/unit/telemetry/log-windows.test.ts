// LogWindows: one log line per key and interval, for refusals a caller repeats; at most maxKeys windows are kept, so
// callers naming new keys cost a few more lines, never more memory.
import { describe, expect, it } from 'vitest';
import { LogWindows } from '../../../src/telemetry/index.js';

describe('LogWindows', () => {
  it('ok/the first of a key in an interval is logged, the rest are not, until the interval ends', () => {
    let now = 0;
    const windows = new LogWindows(10_000, () => now);
    expect([windows.open('a'), windows.open('a'), windows.open('b')]).toEqual([true, false, true]);
    now = 9_999;
    expect(windows.open('a')).toBe(false);
    now = 10_000;
    expect(windows.open('a')).toBe(true);
  });

  it('ok/past maxKeys the expired windows go first, then all: new keys are always logged', () => {
    let now = 0;
    const windows = new LogWindows(10, () => now, 2);
    expect([windows.open('a'), windows.open('b')]).toEqual([true, true]);
    now = 5;
    expect(windows.open('c')).toBe(true); // none expired: all forgotten
    expect(windows.open('a')).toBe(true);
    now = 16; // c and a's windows (from 5) are over, none of them open
    expect(windows.open('d')).toBe(true);
    expect(windows.open('d')).toBe(false);
  });
});
