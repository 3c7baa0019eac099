// The metric definitions: what the histograms can tell apart.
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../../src/telemetry/index.js';

describe('meshauth_request_duration_seconds', () => {
  it('ok/sub-millisecond times land in buckets of their own (a sidecar adds a fraction of a millisecond)', async () => {
    const metrics = new Metrics();
    const inbound = metrics.requestDuration.series('inbound');
    inbound.observe(0.00008);
    inbound.observe(0.0002);
    inbound.observe(0.0004);
    const text = await metrics.registry.metrics();
    const bucket = (le: string) =>
      Number(
        new RegExp(`^meshauth_request_duration_seconds_bucket\\{le="${le}",direction="inbound"\\} (\\d+)$`, 'm').exec(
          text,
        )?.[1],
      );
    expect([bucket('0.0001'), bucket('0.00025'), bucket('0.0005')]).toEqual([1, 2, 3]);
  });
});
