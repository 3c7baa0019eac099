import { describe, expect, it } from 'vitest';
import { type ProxyRow, type ThroughputRound, withMedians } from '../../../bench/report.js';

function round(rps: number, outbound: number, inbound: number, p99Ms = rps / 1000): ThroughputRound {
  return { rps, p50Ms: 1, p99Ms, errors: 1, cpuUsPerReq: { outbound, inbound, app: 50 } };
}

const row = (rounds: ThroughputRound[]): ProxyRow => ({
  name: 'meshauth',
  throughput: { rps: rounds[0]?.rps ?? 0, p50Ms: 1, p99Ms: 1, errors: 1 },
  cpuUsPerReq: rounds[0]?.cpuUsPerReq ?? { outbound: 0, inbound: 0, app: 0 },
  rounds,
});

describe('withMedians', () => {
  it('reports each figure as the median of its rounds, p99 from the round of median req/s', () => {
    // A slow first window (the machine's minute) no longer decides the row.
    const rounds = [round(3000, 200, 190), round(6000, 110, 100), round(5000, 120, 130)];
    const merged = withMedians(row(rounds), rounds);
    expect(merged.throughput).toEqual({ rps: 5000, p50Ms: 1, p99Ms: 5, errors: 3 });
    expect(merged.cpuUsPerReq).toEqual({ outbound: 120, inbound: 130, app: 50 });
    expect(merged.rounds).toHaveLength(3);
  });

  it('averages the middle two of an even count, req/s as CPU, and skips a round without a reading', () => {
    const rounds = [round(4000, 100, Number.NaN), round(6000, 140, 120)];
    const merged = withMedians(row(rounds), rounds);
    expect(merged.cpuUsPerReq).toEqual({ outbound: 120, inbound: 120, app: 50 });
    expect(merged.throughput?.rps).toBe(5000);
    expect(merged.throughput?.p99Ms).toBe(4); // the nearer round (a tie keeps the first)
  });

  it('leaves a row of one round as it was measured', () => {
    const one = row([round(3000, 200, 190)]);
    expect(withMedians(one, one.rounds ?? [])).toBe(one);
  });
});
