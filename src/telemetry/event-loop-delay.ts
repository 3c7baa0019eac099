// The event loop's delay, exposed under prom-client's names (nodejs_eventloop_lag_{min,max,mean,stddev,p50,p90,
// p99}_seconds) but sampled every EVENT_LOOP_SAMPLE_MS instead of prom-client's 10 ms. Each sample is a timer that
// wakes the process: at 10 ms that was a hundred wake-ups a second and most of what an idle sidecar costs (measured
// in docs/performance.md, "Idle CPU"). Node's histogram records the time between two samples, i.e. the interval plus
// the delay; these gauges report the delay alone, so a healthy loop reads about 0 whatever the interval.
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { Gauge, type Registry } from 'prom-client';

export const EVENT_LOOP_SAMPLE_MS = 100;

/**
 * What prom-client's own sampler is given instead of its 10 ms: a timer that never fires in a process's life (its
 * gauges are replaced by these; its scrape-time `nodejs_eventloop_lag_seconds` stays).
 */
export const PROM_CLIENT_SAMPLER_OFF_MS = 2 ** 31 - 1;

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

/** Samples the event loop every `resolutionMs`; `take()` gives the delays (seconds) since the last take. */
export class EventLoopDelay {
  readonly #histogram: IntervalHistogram;
  readonly #intervalNs: number;

  constructor(resolutionMs = EVENT_LOOP_SAMPLE_MS) {
    this.#histogram = monitorEventLoopDelay({ resolution: resolutionMs });
    this.#intervalNs = resolutionMs * 1e6;
    this.#histogram.enable();
  }

  /** Samples recorded since the last take. */
  get count(): number {
    return this.#histogram.count;
  }

  take(): EventLoopDelaySample {
    const histogram = this.#histogram;
    if (histogram.count === 0) return NO_SAMPLES;
    const delay = (betweenSamplesNs: number) => Math.max(0, betweenSamplesNs - this.#intervalNs) / 1e9;
    const sample = {
      min: delay(histogram.min),
      max: delay(histogram.max),
      mean: delay(histogram.mean),
      stddev: histogram.stddev / 1e9,
      p50: delay(histogram.percentile(50)),
      p90: delay(histogram.percentile(90)),
      p99: delay(histogram.percentile(99)),
    };
    histogram.reset();
    return sample;
  }

  stop(): void {
    this.#histogram.disable();
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
 * PROM_CLIENT_SAMPLER_OFF_MS) by ones read from an EventLoopDelay, each scrape covering the time since the last.
 */
export function exposeEventLoopDelay(registry: Registry, sampler = new EventLoopDelay()): void {
  const gauges = new Map<keyof EventLoopDelaySample, Gauge>();
  for (const [field, name, help] of GAUGES) {
    registry.removeSingleMetric(name);
    const collectAll =
      field === 'min'
        ? () => {
            const sample = sampler.take();
            for (const [key, gauge] of gauges) gauge.set(sample[key]);
          }
        : undefined;
    gauges.set(
      field,
      new Gauge({ name, help, registers: [registry], ...(collectAll === undefined ? {} : { collect: collectAll }) }),
    );
  }
}
