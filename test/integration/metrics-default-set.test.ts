// What every meshauth process (sidecar, CA, gateway, webhook) exposes besides its own metrics: prom-client's default
// set, without its three promtool-invalid *_total gauges and with the event-loop delay gauges read from meshauth's
// 100 ms sampler. `promtool check metrics` must accept it (skipped with a reason when promtool is not installed).
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/telemetry/metrics.js';
import { available, runCommand } from '../helpers/sidecar-harness.js';

const HAVE_PROMTOOL = available('promtool');
if (!HAVE_PROMTOOL)
  console.warn('metrics-default-set: promtool not on PATH (Debian package prometheus), skipping lint');

describe('the default metric set', () => {
  it.skipIf(!HAVE_PROMTOOL)('ok/promtool check metrics accepts a process exposition with the default set', async () => {
    const text = await new Metrics({ defaultMetrics: true }).exposition();
    expect(text).toMatch(/^nodejs_eventloop_lag_p99_seconds /m);
    expect(text).toMatch(/^process_cpu_seconds_total /m);
    const result = await runCommand('promtool', ['check', 'metrics'], { input: text });
    expect(result.code, result.stdout + result.stderr).toBe(0);
  });
});
