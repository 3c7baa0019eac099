// RefusalLog: per key (a refusal's bounded label), the first ten refusals of a window in full, the rest counted in
// meshauth_log_lines_suppressed_total and summed in one summary line naming the key; keys do not share a window.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Metrics, RefusalLog } from '../../../src/telemetry/index.js';
import { logLines } from '../../helpers/log-lines.js';

const WINDOW_MS = 10_000;

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});

afterEach(() => {
  vi.useRealTimers();
});

async function suppressed(metrics: Metrics): Promise<number> {
  return (await metrics.logLinesSuppressed.get()).values.find((v) => v.labels.event === 'refused')?.value ?? 0;
}

describe('RefusalLog', () => {
  it('fail/a flood of one key: ten lines in full, then one summary naming the key when the window closes', async () => {
    const log = logLines('t', 'info');
    const metrics = new Metrics();
    const refusals = new RefusalLog(log.logger, metrics, 'refused', 'code', WINDOW_MS);
    for (let i = 0; i < 1_000; i++) refusals.warn('E_ONE', { n: i }, `refused ${i}`);
    expect(log.lines).toHaveLength(10);
    expect(log.lines[0]).toMatchObject({ level: 'warn', event: 'refused', code: 'E_ONE', n: 0, msg: 'refused 0' });
    expect(await suppressed(metrics)).toBe(990);
    vi.advanceTimersByTime(WINDOW_MS);
    expect(log.lines).toHaveLength(11);
    expect(log.lines[10]).toMatchObject({ event: 'refused', code: 'E_ONE', suppressed: 990, last: 'refused 999' });
    // A new window logs again.
    refusals.warn('E_ONE', { n: 1_000 }, 'refused again');
    expect(log.lines.at(-1)).toMatchObject({ code: 'E_ONE', n: 1_000 });
  });

  it('ok/another key during a flood gets its own first lines', () => {
    const log = logLines('t', 'info');
    const refusals = new RefusalLog(log.logger, new Metrics(), 'refused', 'reason', WINDOW_MS);
    for (let i = 0; i < 100; i++) refusals.warn('not_found', {}, 'unknown path');
    refusals.warn('token_unknown', { remote: '127.0.0.1' }, 'unknown join token');
    expect(log.find({ reason: 'token_unknown' })).toMatchObject([{ remote: '127.0.0.1', msg: 'unknown join token' }]);
  });

  it('ok/close writes the pending summaries at once', () => {
    const log = logLines('t', 'info');
    const refusals = new RefusalLog(log.logger, new Metrics(), 'refused', 'code', WINDOW_MS);
    for (let i = 0; i < 12; i++) refusals.warn('E_A', {}, 'a');
    for (let i = 0; i < 11; i++) refusals.warn('E_B', {}, 'b');
    refusals.close();
    expect(log.lines.filter((line) => line.suppressed !== undefined)).toMatchObject([
      { code: 'E_A', suppressed: 2 },
      { code: 'E_B', suppressed: 1 },
    ]);
  });
});
