// The event-loop delay sampler behind nodejs_eventloop_lag_*_seconds: it samples every 100 ms (not prom-client's
// 10 ms, whose timer was most of an idle sidecar's CPU) and reports the delay alone, so an idle loop reads about 0,
// not the sampling interval, and a blocked loop still shows.
import { afterEach, describe, expect, it } from 'vitest';
import { EVENT_LOOP_SAMPLE_MS, EventLoopDelay } from '../../../src/telemetry/event-loop-delay.js';
import { Metrics } from '../../../src/telemetry/metrics.js';

const samplers: EventLoopDelay[] = [];
afterEach(() => {
  for (const sampler of samplers.splice(0)) sampler.stop();
});

async function samplesOf(sampler: EventLoopDelay, count: number): Promise<void> {
  for (let turn = 0; turn < 100 && sampler.count < count; turn++)
    await new Promise((resolve) => setTimeout(resolve, 20));
  expect(sampler.count).toBeGreaterThanOrEqual(count);
}

describe('EventLoopDelay', () => {
  it('ok/an idle loop reads a delay well below the sampling interval (the interval is not reported as delay)', async () => {
    const sampler = new EventLoopDelay();
    samplers.push(sampler);
    expect(sampler.take().max).toBe(0); // nothing sampled yet: zeros, not Node's empty-histogram values
    await samplesOf(sampler, 3);
    const sample = sampler.take();
    expect(sample.min).toBeLessThan((EVENT_LOOP_SAMPLE_MS / 1000) * 0.9);
    expect(sample.min).toBeGreaterThanOrEqual(0);
    expect(sample.p50).toBeLessThanOrEqual(sample.p99);
    expect(sampler.count).toBe(0); // a take starts the next window
  });

  it('fail/a loop blocked for longer than the interval shows as a delay of at least the overrun', async () => {
    const sampler = new EventLoopDelay();
    samplers.push(sampler);
    await samplesOf(sampler, 1);
    sampler.take();
    // After a take, Node measures from the next sample on: wait for it, so the blocked interval is measured.
    await samplesOf(sampler, 1);
    const before = sampler.count;
    const blockedUntil = performance.now() + 2.5 * EVENT_LOOP_SAMPLE_MS;
    while (performance.now() < blockedUntil) {
      // the loop is blocked: the next sample is due within one interval and runs only after this
    }
    await samplesOf(sampler, before + 1);
    expect(sampler.take().max).toBeGreaterThanOrEqual(EVENT_LOOP_SAMPLE_MS / 1000);
  });
});

describe('Metrics with the default set', () => {
  it('ok/each event-loop delay gauge is exposed once, from the 100 ms sampler', async () => {
    const metrics = new Metrics({ defaultMetrics: true });
    const text = await metrics.exposition();
    for (const name of ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99']) {
      const lines = text.split('\n').filter((line) => line.startsWith(`nodejs_eventloop_lag_${name}_seconds `));
      expect(lines, name).toHaveLength(1);
      const value = Number((lines[0] as string).split(' ')[1]);
      expect(value, name).toBeGreaterThanOrEqual(0); // prom-client's own histogram, never sampling, reads 9.2e9 here
      expect(value, name).toBeLessThan(1);
      expect(text.match(new RegExp(`^# TYPE nodejs_eventloop_lag_${name}_seconds gauge$`, 'gm')), name).toHaveLength(1);
    }
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m); // prom-client's scrape-time lag stays
  });
});
