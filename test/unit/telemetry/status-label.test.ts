// The `code` label of the request counters takes a registered HTTP status as its number and folds any other into its
// class. Review finding: the label was the app's (or a peer's) status as sent; an app answering every status from 200
// to 599 made 400 series per peer in both sidecars (up to ~100,000 with the peer bound), where every label is meant to
// come from a fixed list.
import { describe, expect, it } from 'vitest';
import { EdgeRequestTelemetry } from '../../../src/gateway/edge-request-telemetry.js';
import { DataPlaneTelemetry } from '../../../src/sidecar/data-plane-telemetry.js';
import { Metrics, silentLogger, statusLabel } from '../../../src/telemetry/index.js';

describe('statusLabel', () => {
  it('ok/registered statuses keep their number', () => {
    for (const status of [100, 200, 204, 301, 304, 400, 404, 418, 429, 431, 500, 502, 503, 504, 511]) {
      expect(statusLabel(status)).toBe(String(status));
    }
  });

  it('ok/any other status is its class', () => {
    expect([199, 299, 250, 399, 420, 499, 599, 520, 600, 999].map(statusLabel)).toEqual([
      '1xx',
      '2xx',
      '2xx',
      '3xx',
      '4xx',
      '4xx',
      '5xx',
      '5xx',
      '6xx',
      '9xx',
    ]);
  });
});

describe('meshauth_requests_total code label', () => {
  it('fail/an app answering every status from 100 to 999: the series stay within the registered list and classes', async () => {
    const metrics = new Metrics();
    const telemetry = new DataPlaneTelemetry('inbound', metrics, silentLogger());
    for (let status = 100; status <= 999; status++) telemetry.completed('spiffe://example.org/ns/a/sa/b', status, 0);
    const values = (await metrics.requests.get()).values;
    const codes = new Set(values.map((v) => String(v.labels.code)));
    // 63 registered statuses (node:http's list) and the nine classes: nothing per unregistered status.
    expect(codes.size).toBeLessThanOrEqual(63 + 9);
    expect(codes.has('299')).toBe(false);
    expect(codes.has('2xx')).toBe(true);
    expect(values.reduce((sum, v) => sum + v.value, 0)).toBe(900);
  });
});

describe('meshauth_gateway_requests_total code label', () => {
  it('fail/answers with every status from 100 to 999: registered statuses and classes only', async () => {
    const metrics = new Metrics();
    const telemetry = new EdgeRequestTelemetry(metrics);
    for (let status = 100; status <= 999; status++) telemetry.answeredOnSocket(status);
    const codes = new Set((await metrics.gatewayRequests.get()).values.map((v) => String(v.labels.code)));
    expect(codes.size).toBeLessThanOrEqual(63 + 9);
    expect(codes.has('599')).toBe(false);
    expect(codes.has('5xx')).toBe(true);
  });
});
