// DurationHistogram against prom-client's own Histogram: the same observations must read as the same exposition, and
// the same JSON through a Registry, whatever the values (property test) — what a scraper or promtool sees.
import fc from 'fast-check';
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { DurationHistogram } from '../../../src/telemetry/index.js';

const BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const NAME = 'meshauth_test_duration_seconds';
const HELP = 'Test durations, by direction.';

function pair() {
  const ours = new Registry();
  const theirs = new Registry();
  const fast = new DurationHistogram({
    name: NAME,
    help: HELP,
    labelName: 'direction',
    buckets: BUCKETS,
    registers: [ours],
  });
  const reference = new Histogram({
    name: NAME,
    help: HELP,
    labelNames: ['direction'],
    buckets: BUCKETS,
    registers: [theirs],
  });
  return { ours, theirs, fast, reference };
}

const observation = fc.record({
  direction: fc.constantFrom('inbound', 'outbound', 'external'),
  // Bounds themselves, values between them and past the last one.
  value: fc.oneof(fc.constantFrom(...BUCKETS, 0, 11), fc.double({ min: 0, max: 20, noNaN: true })),
});

describe('DurationHistogram', () => {
  it("reads as prom-client's Histogram fed the same observations (text and JSON)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(observation, { maxLength: 60 }), async (observations) => {
        const { ours, theirs, fast, reference } = pair();
        for (const { direction, value } of observations) {
          fast.series(direction).observe(value);
          reference.observe({ direction }, value);
        }
        expect(await ours.metrics()).toBe(await theirs.metrics());
        expect(JSON.parse(JSON.stringify(await ours.getMetricsAsJSON()))).toEqual(
          JSON.parse(JSON.stringify(await theirs.getMetricsAsJSON())).map((metric: { values: object[] }) => ({
            ...metric,
            // prom-client adds an empty exemplar field to each bucket; nothing reads it without exemplars on.
            values: metric.values.map(({ exemplar: _, ...value }: { exemplar?: unknown }) => value),
          })),
        );
      }),
      { numRuns: 200 },
    );
  });

  it("a value on a bound counts in that bound's bucket; one past the last bound only in +Inf", async () => {
    const { ours, fast } = pair();
    const series = fast.series('inbound');
    series.observe(0.0005);
    series.observe(10.5);
    const text = await ours.metrics();
    expect(text).toContain(`${NAME}_bucket{le="0.00025",direction="inbound"} 0\n`);
    expect(text).toContain(`${NAME}_bucket{le="0.0005",direction="inbound"} 1\n`);
    expect(text).toContain(`${NAME}_bucket{le="10",direction="inbound"} 1\n`);
    expect(text).toContain(`${NAME}_bucket{le="+Inf",direction="inbound"} 2\n`);
    expect(text).toContain(`${NAME}_sum{direction="inbound"} 10.5005\n`);
    expect(text).toContain(`${NAME}_count{direction="inbound"} 2`);
  });

  it('ignores a value that is not a finite number (prom-client would throw on the request path)', async () => {
    const { fast } = pair();
    const series = fast.series('inbound');
    series.observe(Number.NaN);
    series.observe(Number.POSITIVE_INFINITY);
    expect([series.count, series.sum]).toEqual([0, 0]);
  });

  it("one series per label value, kept; reset zeroes them, as a Registry's resetMetrics does", async () => {
    const { ours, fast } = pair();
    expect(fast.series('inbound')).toBe(fast.series('inbound'));
    fast.series('inbound').observe(0.001);
    ours.resetMetrics();
    expect(await ours.metrics()).toContain(`${NAME}_count{direction="inbound"} 0`);
  });

  it('refuses a second metric of its name in a registry, as any prom-client metric', () => {
    const { ours } = pair();
    expect(() => new Histogram({ name: NAME, help: HELP, registers: [ours] })).toThrow(/already been registered/);
  });
});
