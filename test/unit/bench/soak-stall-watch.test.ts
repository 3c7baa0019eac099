// The soak's view of machine stalls (bench/soak/stall-watch.ts): the load loop turns every few milliseconds, and a
// gap of a second or more is every process standing still. A stall that lasts past the run's end is the one the
// resumed machine ends the loop with; it must be reported like any other, or the requests its expired SVIDs fail
// read as a mesh failure (exit 1) instead of an inconclusive run (exit 3).
import { describe, expect, it } from 'vitest';
import { StallWatch } from '../../../bench/soak/stall-watch.js';

/** Turns of the loop every 10 ms from `from` while it runs and before `until`; the last turn's time. */
function turn(watch: StallWatch, from: number, until: number): number {
  let now = from;
  for (; now < until; now += 10) {
    if (!watch.running(now)) return now;
  }
  return now;
}

describe('soak: machine stalls seen by the load loop', () => {
  it('ok/a steady loop reports no stall and stops at the run time', () => {
    const watch = new StallWatch(0, 60_000);
    expect(turn(watch, 0, 70_000)).toBe(60_000);
    expect(watch.stalls).toEqual([]);
  });

  it('ok/a 12 s stall in the middle of the run is reported with its end and length', () => {
    const watch = new StallWatch(0, 60_000);
    turn(watch, 0, 20_000);
    expect(watch.running(32_000)).toBe(true);
    expect(watch.stalls).toEqual([{ atSeconds: 32, seconds: 12.01 }]);
  });

  it('ok/a 12 s stall that outlasts the end of the run is reported on the turn that ends the loop', () => {
    const watch = new StallWatch(0, 60_000);
    turn(watch, 0, 55_000);
    // SIGSTOP at t=55 s for 12 s: the loop resumes past its 60 s and stops on this turn.
    expect(watch.running(67_000)).toBe(false);
    expect(watch.stalls).toEqual([{ atSeconds: 67, seconds: 12.01 }]);
  });
});
