// The event loop's delay, exposed under prom-client's names (nodejs_eventloop_lag_{min,max,mean,stddev,p50,p90,
// p99}_seconds) but sampled every EVENT_LOOP_SAMPLE_MS instead of prom-client's 10 ms, and every
// EVENT_LOOP_IDLE_SAMPLE_MS while the loop idles. Each sample is a timer that wakes the process: at 10 ms that was a
// hundred wake-ups a second and up to half of what an idle sidecar costs, and at 100 ms it was still most of an idle
// sidecar's wake-ups (measured in docs/performance.md, Rounds 12 and 26). The gauges report how late each sample ran
// (about 0 on a healthy loop), not the time between two samples as prom-client's do (the interval plus the delay).
import { createHistogram, type EventLoopUtilization, performance, type RecordableHistogram } from 'node:perf_hooks';
import { Gauge, type Registry } from 'prom-client';

export const EVENT_LOOP_SAMPLE_MS = 100;
/** The interval after one in which the loop was busy less than EVENT_LOOP_BUSY_SHARE of the time. */
export const EVENT_LOOP_IDLE_SAMPLE_MS = 1_000;
/**
 * Busier than this share of an interval (1 ms in 100), the next sample comes after EVENT_LOOP_SAMPLE_MS. An idle
 * sidecar's own timers keep it well under (their wake-ups take about 0.1 % of a second); a scrape, a request or a
 * stall of any length within the interval takes it over.
 */
export const EVENT_LOOP_BUSY_SHARE = 0.01;

/**
 * What prom-client's own sampler is given instead of its 10 ms: the longest interval Node's timers take (24.8 days),
 * so that it wakes nothing; its gauges are replaced by these, its scrape-time `nodejs_eventloop_lag_seconds` stays.
 */
export const PROM_CLIENT_SAMPLER_OFF_MS = 2 ** 31 - 1;

/** Scrapes closer together than this read the same sample (one window for the seven gauges of one scrape). */
const SCRAPE_WINDOW_MS = 1_000;

export interface EventLoopDelaySample {
  readonly min: number;
  readonly max: number;
  readonly mean: number;
  readonly stddev: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
}

const NO_SAMPLES: EventLoopDelaySample = Object.freeze({ min: 0, max: 0, mean: 0, stddev: 0, p50: 0, p90: 0, p99: 0 });

export interface EventLoopSampling {
  /** The interval while the loop works. */
  readonly busyMs: number;
  /** The interval after one in which the loop was busy less than `busyShare` of the time. */
  readonly idleMs: number;
  readonly busyShare: number;
}

const SAMPLING: EventLoopSampling = Object.freeze({
  busyMs: EVENT_LOOP_SAMPLE_MS,
  idleMs: EVENT_LOOP_IDLE_SAMPLE_MS,
  busyShare: EVENT_LOOP_BUSY_SHARE,
});

/**
 * Samples the event loop from an unref'd timer, every `busyMs` while the loop works and every `idleMs` after an
 * interval it spent almost all waiting; `take()` gives the delays (seconds) since the last take. The time of the last
 * sample survives a take (Node's own monitorEventLoopDelay forgets it on reset, so a stall that began just after a
 * scrape went unseen). A stall delays the sample due within it at either interval, and makes the next interval the
 * short one; only a stall that begins and ends between two samples of an idle loop goes unseen.
 */
export class EventLoopDelay {
  readonly #histogram: RecordableHistogram = createHistogram();
  readonly #sampling: EventLoopSampling;
  #timer: NodeJS.Timeout;
  #intervalMs: number;
  #last = process.hrtime.bigint();
  #utilization: EventLoopUtilization = performance.eventLoopUtilization();
  readonly #onTimer = (): void => this.#sample();

  constructor(sampling: Partial<EventLoopSampling> = {}) {
    this.#sampling = { ...SAMPLING, ...sampling };
    this.#intervalMs = this.#sampling.busyMs;
    this.#timer = this.#arm();
  }

  /** Samples recorded since the last take. */
  get count(): number {
    return this.#histogram.count;
  }

  /** The wait before the next sample: `busyMs` or `idleMs`. */
  get intervalMs(): number {
    return this.#intervalMs;
  }

  take(): EventLoopDelaySample {
    const histogram = this.#histogram;
    if (histogram.count === 0) return NO_SAMPLES;
    const sample = {
      min: histogram.min / 1e9,
      max: histogram.max / 1e9,
      mean: histogram.mean / 1e9,
      stddev: histogram.stddev / 1e9,
      p50: histogram.percentile(50) / 1e9,
      p90: histogram.percentile(90) / 1e9,
      p99: histogram.percentile(99) / 1e9,
    };
    histogram.reset();
    return sample;
  }

  stop(): void {
    clearTimeout(this.#timer);
  }

  #arm(): NodeJS.Timeout {
    const timer = setTimeout(this.#onTimer, this.#intervalMs);
    timer.unref();
    return timer;
  }

  #sample(): void {
    const now = process.hrtime.bigint();
    const late = now - this.#last - BigInt(this.#intervalMs) * 1_000_000n;
    this.#last = now;
    // A histogram takes values ≥ 1 (ns): on time or early counts as 1 ns.
    this.#histogram.record(late > 0n ? late : 1n);
    const utilization = performance.eventLoopUtilization();
    const busy =
      performance.eventLoopUtilization(utilization, this.#utilization).utilization >= this.#sampling.busyShare;
    this.#utilization = utilization;
    this.#intervalMs = busy ? this.#sampling.busyMs : this.#sampling.idleMs;
    this.#timer = this.#arm();
  }
}

const GAUGES: readonly [keyof EventLoopDelaySample, string, string][] = [
  ['min', 'nodejs_eventloop_lag_min_seconds', 'The minimum recorded event loop delay.'],
  ['max', 'nodejs_eventloop_lag_max_seconds', 'The maximum recorded event loop delay.'],
  ['mean', 'nodejs_eventloop_lag_mean_seconds', 'The mean of the recorded event loop delays.'],
  ['stddev', 'nodejs_eventloop_lag_stddev_seconds', 'The standard deviation of the recorded event loop delays.'],
  ['p50', 'nodejs_eventloop_lag_p50_seconds', 'The 50th percentile of the recorded event loop delays.'],
  ['p90', 'nodejs_eventloop_lag_p90_seconds', 'The 90th percentile of the recorded event loop delays.'],
  ['p99', 'nodejs_eventloop_lag_p99_seconds', 'The 99th percentile of the recorded event loop delays.'],
];

/**
 * Replaces prom-client's event-loop delay gauges in `registry` (registered by collectDefaultMetrics with
 * PROM_CLIENT_SAMPLER_OFF_MS) by ones read from an EventLoopDelay. Each gauge reads the sample of its scrape,
 * whichever of them is collected first: the first takes it, the others within SCRAPE_WINDOW_MS read the same.
 */
export function exposeEventLoopDelay(registry: Registry, sampler = new EventLoopDelay()): void {
  let current = NO_SAMPLES;
  let takenAt = Number.NEGATIVE_INFINITY;
  const sampleOfThisScrape = (): EventLoopDelaySample => {
    const now = performance.now();
    if (now - takenAt >= SCRAPE_WINDOW_MS) {
      current = sampler.take();
      takenAt = now;
    }
    return current;
  };
  for (const [field, name, help] of GAUGES) {
    registry.removeSingleMetric(name);
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(sampleOfThisScrape()[field]);
      },
    });
  }
}
