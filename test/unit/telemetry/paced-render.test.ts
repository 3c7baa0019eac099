// PacedRender: /metrics renderings are paced (one per interval at most) and shared by whoever asks while one waits,
// yet every answer is rendered after its caller asked. Before, each /metrics request rendered on its own: a client
// asking in a loop got thousands of renderings a second, taken from the data path's CPU.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PacedRender, RENDER_WAIT_BOUND_MS } from '../../../src/telemetry/paced-render.js';

/** A rendering that returns the value of `state` when it starts, and counts how often it ran. */
function countingRender(state: { value: number }) {
  const rendered: number[] = [];
  const render = async () => {
    const value = state.value;
    rendered.push(value);
    await Promise.resolve();
    return value;
  };
  return { render, rendered };
}

describe('PacedRender', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('ok/the first call renders at once, without waiting for a timer', async () => {
    const state = { value: 1 };
    const { render, rendered } = countingRender(state);
    const paced = new PacedRender(render, 50, () => Date.now());
    await expect(paced.get()).resolves.toBe(1);
    expect(rendered).toEqual([1]);
  });

  it('ok/calls while a rendering runs share the next one, which starts after them and after the interval', async () => {
    const state = { value: 0 };
    const { render, rendered } = countingRender(state);
    const paced = new PacedRender(render, 50, () => Date.now());
    const first = paced.get(); // renders now, with value 0
    const later: Promise<number>[] = [];
    for (let i = 1; i <= 100; i++) {
      state.value = i; // something happens, then someone scrapes
      later.push(paced.get());
    }
    await expect(first).resolves.toBe(0);
    await vi.advanceTimersByTimeAsync(50);
    const answers = await Promise.all(later);
    // Every answer reflects what happened before its call: the shared rendering started after the last of them.
    expect(answers.every((answer) => answer === 100)).toBe(true);
    expect(rendered).toEqual([0, 100]);
  });

  it('fail/a flood gets one rendering per interval, not one per call', async () => {
    const state = { value: 0 };
    const { render, rendered } = countingRender(state);
    const paced = new PacedRender(render, 50, () => Date.now());
    const answers: Promise<number>[] = [];
    // 1,000 calls a second for one second: one every millisecond.
    for (let ms = 0; ms < 1000; ms++) {
      state.value = ms;
      const asked = ms;
      answers.push(paced.get().then((value) => value - asked));
      await vi.advanceTimersByTimeAsync(1);
    }
    await vi.advanceTimersByTimeAsync(100);
    const lags = await Promise.all(answers);
    expect(lags.every((lag) => lag >= 0)).toBe(true); // never older than the call
    expect(rendered.length).toBeGreaterThanOrEqual(19);
    expect(rendered.length).toBeLessThanOrEqual(21);
  });

  it('fail/a rendering that fails is the answer of everyone who shared it, and the next call renders again', async () => {
    let fail = true;
    const paced = new PacedRender(
      async () => {
        if (fail) throw new Error('collector failed');
        return 'text';
      },
      50,
      () => Date.now(),
    );
    await expect(paced.get()).rejects.toThrow('collector failed');
    const shared = [paced.get(), paced.get()];
    const settled = Promise.allSettled(shared);
    await vi.advanceTimersByTimeAsync(50);
    expect((await settled).map((result) => result.status)).toEqual(['rejected', 'rejected']);
    fail = false;
    await vi.advanceTimersByTimeAsync(50);
    await expect(paced.get()).resolves.toBe('text');
  });

  it('fail/renderings that take longer than the interval are spaced by their own cost: at most half the time', async () => {
    let renderings = 0;
    let busy = 0;
    const paced = new PacedRender(
      async () => {
        renderings += 1;
        busy += 60;
        await new Promise((done) => setTimeout(done, 60)); // 60 ms a rendering, past the 50 ms interval
        return renderings;
      },
      50,
      () => Date.now(),
    );
    // 16 callers asking again as soon as answered, for 3 s.
    const until = Date.now() + 3000;
    const loop = async () => {
      while (Date.now() < until) await paced.get();
    };
    const loops = Promise.all(Array.from({ length: 16 }, loop));
    await vi.advanceTimersByTimeAsync(3200);
    await loops;
    expect(busy / 3000).toBeLessThanOrEqual(0.55);
    expect(renderings).toBeGreaterThanOrEqual(20);
  });

  it('fail/a rendering that never ends holds the next callers for RENDER_WAIT_BOUND_MS at most', async () => {
    let first = true;
    const paced = new PacedRender(
      () => {
        if (first) {
          first = false;
          return new Promise<string>(() => undefined); // a collector that never answers
        }
        return Promise.resolve('text');
      },
      50,
      () => Date.now(),
    );
    void paced.get();
    const later = paced.get();
    let answered = false;
    void later.then(() => {
      answered = true;
    });
    await vi.advanceTimersByTimeAsync(RENDER_WAIT_BOUND_MS - 100);
    expect(answered).toBe(false);
    await vi.advanceTimersByTimeAsync(200);
    await expect(later).resolves.toBe('text');
    // The hung one sets no pace: the next call after the interval renders at once.
    await vi.advanceTimersByTimeAsync(50);
    await expect(paced.get()).resolves.toBe('text');
  });
});
