// The reporting of requests refused because their caller's queue for the app is full: every one counted in
// meshauth_requests_rejected_total, one line per caller per interval (the others counted as suppressed lines), so a
// caller flooding past its bound neither floods the log nor takes the code's lines from another caller.
import { describe, expect, it } from 'vitest';
import { MeshauthError } from '../../../../src/errors/index.js';
import { DataPlaneTelemetry } from '../../../../src/sidecar/data-plane-telemetry.js';
import { upstreamBusy } from '../../../../src/sidecar/inbound/app-forwarder.js';
import { BusyRefusals } from '../../../../src/sidecar/inbound/busy-refusals.js';
import type { Exchange } from '../../../../src/sidecar/pipeline/exchange.js';
import { Metrics } from '../../../../src/telemetry/index.js';
import { logLines } from '../../../helpers/log-lines.js';

const A = 'spiffe://example.org/ns/a/sa/a';
const B = 'spiffe://example.org/ns/b/sa/b';

function setUp() {
  const metrics = new Metrics();
  const log = logLines('sidecar', 'info');
  const telemetry = new DataPlaneTelemetry('inbound', metrics, log.logger);
  let now = 0;
  const refusals = new BusyRefusals(telemetry, metrics, 10_000, () => now);
  const refuse = (peerId: string): void =>
    refusals.report(peerId, { peerId, startedAt: 0 } as Exchange, upstreamBusy(384));
  return {
    log,
    refuse,
    advance: (ms: number) => {
      now += ms;
    },
    rejected: async () =>
      (await metrics.requestsRejected.get()).values.find((v) => v.labels.code === 'MESHAUTH_ERR_UPSTREAM_BUSY')
        ?.value ?? 0,
    suppressed: async () =>
      (await metrics.logLinesSuppressed.get()).values.find((v) => v.labels.event === 'request_rejected')?.value ?? 0,
    answered503: async () =>
      (await metrics.requests.get()).values.find((v) => v.labels.code === '503' && v.labels.peer_id === A)?.value ?? 0,
    lines: () => log.find({ code: 'MESHAUTH_ERR_UPSTREAM_BUSY' }),
  };
}

describe('BusyRefusals', () => {
  it('ok/the refusal is a 503 of the registry with its reason and bound', () => {
    const error = upstreamBusy(384);
    expect(error).toBeInstanceOf(MeshauthError);
    expect(error).toMatchObject({ code: 'MESHAUTH_ERR_UPSTREAM_BUSY', status: 503, reason: 'peer_queue_full' });
    expect(error.detail).toEqual({ limit: 'waiting_per_peer', max: 384 });
  });

  it('fail/a caller refused again within the interval: every refusal counted, one line', async () => {
    const t = setUp();
    for (let i = 0; i < 50; i++) t.refuse(A);
    expect(await t.rejected()).toBe(50);
    expect(await t.answered503()).toBe(50);
    expect(await t.suppressed()).toBe(49);
    expect(t.lines()).toHaveLength(1);
    expect(t.lines()[0]).toMatchObject({ peer: A, reason: 'peer_queue_full', max: 384, direction: 'inbound' });
  });

  it('fail/another caller refused meanwhile gets its own line', async () => {
    const t = setUp();
    for (let i = 0; i < 20; i++) t.refuse(A);
    t.refuse(B);
    expect(t.lines().map((line) => line.peer)).toEqual([A, B]);
    expect(await t.rejected()).toBe(21);
  });

  it('fail/the same caller after the interval gets a new line', () => {
    const t = setUp();
    t.refuse(A);
    t.advance(9_999);
    t.refuse(A);
    expect(t.lines()).toHaveLength(1);
    t.advance(1);
    t.refuse(A);
    expect(t.lines()).toHaveLength(2);
  });
});
