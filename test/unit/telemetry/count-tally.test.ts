// CountTally: what the request path adds to its cells is in the counter whenever the counter is read (the exposition,
// get()), and only once.
import { Counter, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { CountTally } from '../../../src/telemetry/index.js';

function tallied() {
  const registry = new Registry();
  let tally: CountTally<'direction' | 'code'> | undefined;
  const counter = new Counter({
    name: 'meshauth_test_total',
    help: 'Test.',
    labelNames: ['direction', 'code'] as const,
    registers: [registry],
    collect: () => tally?.flush(),
  });
  tally = new CountTally(counter);
  return { registry, counter, tally };
}

const countOf = async (counter: Counter<'direction' | 'code'>, code: string) =>
  (await counter.get()).values.find((v) => v.labels.code === code)?.value;

describe('CountTally', () => {
  it("a cell's additions reach the counter when it is read, through its collect hook", async () => {
    const { registry, counter, tally } = tallied();
    const ok = tally.cell({ direction: 'inbound', code: '200' });
    const notFound = tally.cell({ direction: 'inbound', code: '404' });
    ok.pending += 3;
    notFound.pending++;
    expect(await registry.metrics()).toContain('meshauth_test_total{direction="inbound",code="200"} 3\n');
    expect(await countOf(counter, '404')).toBe(1);
    expect(ok.pending).toBe(0);
  });

  it('counts each addition once across reads', async () => {
    const { counter, tally } = tallied();
    const ok = tally.cell({ direction: 'outbound', code: '200' });
    ok.pending += 2;
    expect(await countOf(counter, '200')).toBe(2);
    expect(await countOf(counter, '200')).toBe(2);
    ok.pending++;
    expect(await countOf(counter, '200')).toBe(3);
  });

  it('a cell still counts after the registry resets its metrics', async () => {
    const { registry, counter, tally } = tallied();
    const ok = tally.cell({ direction: 'outbound', code: '200' });
    ok.pending++;
    await counter.get();
    registry.resetMetrics();
    ok.pending++;
    expect(await countOf(counter, '200')).toBe(1);
  });

  it("counts added but not yet read are dropped by a reset, as the counter's own are", async () => {
    const { registry, counter, tally } = tallied();
    const ok = tally.cell({ direction: 'outbound', code: '200' });
    ok.pending += 2;
    registry.resetMetrics();
    ok.pending++;
    expect(await countOf(counter, '200')).toBe(1);
  });

  it('a label set with nothing added is not in the exposition (as a labels() child never incremented)', async () => {
    const { registry, tally } = tallied();
    tally.cell({ direction: 'inbound', code: '503' });
    expect(await registry.metrics()).not.toContain('code="503"');
  });
});
