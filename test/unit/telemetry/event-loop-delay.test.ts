// The event-loop delay sampler behind nodejs_eventloop_lag_*_seconds: it samples every 100 ms while the loop works and
// every second while it idles (not prom-client's 10 ms, whose timer was up to half of an idle sidecar's CPU) and
// reports how late each sample ran, so an idle loop reads about 0, not the sampling interval, and a blocked loop
// shows, also right after a scrape.
import { collectDefaultMetrics, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import {
  EVENT_LOOP_SAMPLE_MS,
  EventLoopDelay,
  type EventLoopSampling,
  exposeEventLoopDelay,
  PROM_CLIENT_SAMPLER_OFF_MS,
} from '../../../src/telemetry/event-loop-delay.js';
import { Metrics } from '../../../src/telemetry/metrics.js';

const INTERVAL_S = EVENT_LOOP_SAMPLE_MS / 1000;
const samplers: EventLoopDelay[] = [];
afterEach(() => {
  for (const sampler of samplers.splice(0)) sampler.stop();
});

/** A sampler at 100 ms whatever the loop does (the idle interval set to the busy one), unless `sampling` says. */
function sampler(sampling: Partial<EventLoopSampling> = { idleMs: EVENT_LOOP_SAMPLE_MS }): EventLoopDelay {
  const made = new EventLoopDelay(sampling);
  samplers.push(made);
  return made;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function samplesOf(of: EventLoopDelay, count: number): Promise<void> {
  for (let turn = 0; turn < 100 && of.count < count; turn++) await pause(20);
  expect(of.count).toBeGreaterThanOrEqual(count);
}

function blockLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // the loop is blocked: the next sample is due within one interval and runs only after this
  }
}

/** The value of each nodejs_eventloop_lag_<stat>_seconds line of an exposition. */
function lagValues(text: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const line of text.split('\n')) {
    const match = /^nodejs_eventloop_lag_(\w+)_seconds (\S+)$/.exec(line);
    if (match === null) continue;
    out.set(match[1] as string, [...(out.get(match[1] as string) ?? []), Number(match[2])]);
  }
  return out;
}

describe('EventLoopDelay', () => {
  it('ok/an idle loop reads a delay well below the sampling interval (the interval is not reported as delay)', async () => {
    const idle = sampler();
    expect(idle.take().max).toBe(0); // nothing sampled yet: zeros
    await samplesOf(idle, 3);
    const sample = idle.take();
    expect(sample.min).toBeLessThan(INTERVAL_S * 0.9);
    expect(sample.min).toBeGreaterThanOrEqual(0);
    expect(sample.p50).toBeLessThanOrEqual(sample.p99);
    expect(idle.count).toBe(0); // a take starts the next window
  });

  it('fail/a loop blocked right after a take shows as a delay of at least the overrun', async () => {
    const blocked = sampler();
    await samplesOf(blocked, 1);
    blocked.take();
    blockLoop(2.5 * EVENT_LOOP_SAMPLE_MS);
    await samplesOf(blocked, 1);
    expect(blocked.take().max).toBeGreaterThanOrEqual(INTERVAL_S);
  });
});

describe('EventLoopDelay on an idle loop', () => {
  // Short intervals, and a share the test worker's own timers stay under, so that the test waits little.
  const sampling = { busyMs: 40, idleMs: 300, busyShare: 0.05 };

  async function untilIdleInterval(of: EventLoopDelay): Promise<void> {
    for (let turn = 0; turn < 100 && of.intervalMs !== sampling.idleMs; turn++) await pause(50);
    expect(of.intervalMs).toBe(sampling.idleMs);
  }

  it('ok/a loop that waits is sampled at the idle interval, not the busy one', async () => {
    const idle = sampler(sampling);
    expect(idle.intervalMs).toBe(sampling.busyMs); // a start is work: the first wait is the short one
    await untilIdleInterval(idle);
    idle.take();
    await samplesOf(idle, 1);
    expect(idle.take().max).toBeLessThan(sampling.idleMs / 1000); // the idle interval is not reported as delay
  });

  it('fail/a stall while the loop idles shows as a delay and brings the busy interval back', async () => {
    const stalled = sampler(sampling);
    await untilIdleInterval(stalled);
    stalled.take();
    const count = stalled.count;
    // Longer than the idle interval: the sample due within it runs late by at least half the interval.
    blockLoop(1.5 * sampling.idleMs);
    await samplesOf(stalled, count + 1);
    expect(stalled.intervalMs).toBe(sampling.busyMs);
    expect(stalled.take().max).toBeGreaterThanOrEqual((0.5 * sampling.idleMs) / 1000);
  });
});

describe('the exposed gauges', () => {
  it('fail/a blocked loop reaches every gauge of one scrape, whichever is collected first', async () => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: PROM_CLIENT_SAMPLER_OFF_MS });
    const blocked = sampler();
    exposeEventLoopDelay(registry, blocked);
    await samplesOf(blocked, 1);
    blockLoop(2.5 * EVENT_LOOP_SAMPLE_MS);
    await samplesOf(blocked, 2);
    // One gauge read alone first (not the exposition's order), then the whole exposition of the same scrape.
    const max = (await registry.getSingleMetric('nodejs_eventloop_lag_max_seconds')?.get())?.values[0]?.value;
    expect(max).toBeGreaterThanOrEqual(INTERVAL_S);
    const values = lagValues(await registry.metrics());
    expect(values.get('max')).toEqual([max]);
    expect(values.get('p99')?.[0]).toBeGreaterThanOrEqual(INTERVAL_S);
  });

  it('ok/each event-loop delay gauge is exposed once, from the 100 ms sampler', async () => {
    const text = await new Metrics({ defaultMetrics: true }).exposition();
    const values = lagValues(text);
    for (const name of ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99']) {
      expect(values.get(name), name).toHaveLength(1);
      expect(text.match(new RegExp(`^# TYPE nodejs_eventloop_lag_${name}_seconds gauge$`, 'gm')), name).toHaveLength(1);
      const value = values.get(name)?.[0] as number;
      expect(value, name).toBeGreaterThanOrEqual(0); // prom-client's own histogram, never sampling, reads 9.2e9 here
      expect(value, name).toBeLessThan(1);
    }
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m); // prom-client's scrape-time lag stays
  });
});
