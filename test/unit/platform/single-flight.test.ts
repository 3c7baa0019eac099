import { afterEach, describe, expect, it, vi } from 'vitest';
import { SingleFlight } from '../../../src/platform/single-flight.js';

/** A task whose runs the test finishes by hand. */
function heldTask(): { task: () => Promise<void>; runs: () => number; finish: (error?: Error) => void } {
  const pending: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  return {
    task: () =>
      new Promise<void>((resolve, reject) => {
        pending.push({ resolve, reject });
      }),
    runs: () => pending.length,
    finish: (error) => {
      const run = pending.at(-1);
      if (error === undefined) run?.resolve();
      else run?.reject(error);
    },
  };
}

describe('SingleFlight', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('callers that come while a run is under way share it instead of starting another', async () => {
    const held = heldTask();
    const flight = new SingleFlight(held.task);
    const first = flight.run();
    const second = flight.run();
    expect(second).toBe(first);
    expect(held.runs()).toBe(1);
    held.finish();
    await first;
    void flight.run();
    expect(held.runs()).toBe(2);
  });

  it('a failed run reaches its callers and does not block the next one', async () => {
    const held = heldTask();
    const flight = new SingleFlight(held.task);
    const first = flight.run();
    held.finish(new Error('unreadable'));
    await expect(first).rejects.toThrow('unreadable');
    void flight.run();
    expect(held.runs()).toBe(2);
  });

  it('with a minimum interval, a call sooner than that after the last start does not run', async () => {
    vi.useFakeTimers({ now: 10_000 });
    const held = heldTask();
    const flight = new SingleFlight(held.task, 1000);
    const first = flight.run();
    held.finish();
    await first;
    vi.setSystemTime(10_999);
    await flight.run();
    expect(held.runs()).toBe(1);
    vi.setSystemTime(11_000);
    void flight.run();
    expect(held.runs()).toBe(2);
  });

  it('fail/a wall clock stepped back does not stop the runs until it catches up (it never did without an interval)', async () => {
    vi.useFakeTimers({ now: 3_600_000 });
    for (const minIntervalMs of [0, 1000]) {
      const held = heldTask();
      const flight = new SingleFlight(held.task, minIntervalMs);
      vi.setSystemTime(3_600_000);
      const first = flight.run();
      held.finish();
      await first;
      // An NTP correction or a resumed VM: the wall clock is an hour earlier than at the last start.
      vi.setSystemTime(0);
      void flight.run();
      expect(held.runs(), `minIntervalMs ${minIntervalMs}`).toBe(2);
    }
  });
});
