// The peer_id label of meshauth_requests_total and meshauth_tcp_connections_total is bounded per process: the first
// N distinct peer SPIFFE IDs keep their own value, later ones are counted under `other`, and the label-child caches
// of the telemetry classes grow no further than the series do.
import { describe, expect, it } from 'vitest';
import { INBOUND_LIMIT_DEFAULTS, loadSidecarConfig } from '../../../src/config/index.js';
import { DataPlaneTelemetry } from '../../../src/sidecar/data-plane-telemetry.js';
import { TcpTelemetry } from '../../../src/sidecar/tcp/tcp-telemetry.js';
import { DEFAULT_MAX_PEER_ID_LABELS, Metrics, PEER_ID_OVERFLOW } from '../../../src/telemetry/index.js';
import { logLines } from '../../helpers/log-lines.js';

const peer = (n: number) => `spiffe://example.org/ns/load/sa/w${n}`;

async function peerIdValues(metrics: Metrics, name: string): Promise<Set<string>> {
  const metric = metrics.registry.getSingleMetric(name);
  if (metric === undefined) throw new Error(`no ${name}`);
  return new Set((await metric.get()).values.map((v) => String(v.labels.peer_id)));
}

describe('peer_id label bound', () => {
  it('ok/the first N peers keep their ID, later ones are "other", one warn line', () => {
    const log = logLines('sidecar');
    const metrics = new Metrics();
    metrics.peerIds.setMax(3);
    const values = [1, 2, 3, 4, 5, 1, 4].map((n) => metrics.peerIds.labelOf(peer(n), log.logger));
    expect(values).toEqual([peer(1), peer(2), peer(3), PEER_ID_OVERFLOW, PEER_ID_OVERFLOW, peer(1), PEER_ID_OVERFLOW]);
    // No peer (external clients, egress) is not a peer: it takes no place and is never folded.
    expect(metrics.peerIds.labelOf('', log.logger)).toBe('');
    const full = log.find({ event: 'peer_id_labels_full' });
    expect(full).toHaveLength(1);
    expect(full[0]).toMatchObject({ max: 3, peer: peer(4) });
  });

  it('ok/a bound of 0: every peer is "other"', () => {
    const log = logLines('sidecar');
    const metrics = new Metrics();
    metrics.peerIds.setMax(0);
    expect([1, 2].map((n) => metrics.peerIds.labelOf(peer(n), log.logger))).toEqual([
      PEER_ID_OVERFLOW,
      PEER_ID_OVERFLOW,
    ]);
    expect(log.find({ event: 'peer_id_labels_full' })).toHaveLength(1);
  });

  it('ok/the config key: default 256, 0 accepted, negative refused', () => {
    const limits = (value: unknown) =>
      loadSidecarConfig(undefined, {
        MESHAUTH_TRUST_DOMAIN: 'example.org',
        MESHAUTH_CA_URL: 'https://ca:1',
        MESHAUTH_CA_BUNDLE: '/b',
        MESHAUTH_CA_TOKEN: '/t',
        ...(value === undefined ? {} : { MESHAUTH_INBOUND_LIMITS: JSON.stringify({ maxPeerIdLabels: value }) }),
      }).inbound.limits.maxPeerIdLabels;
    expect(limits(undefined)).toBe(256);
    expect(limits(0)).toBe(0);
    expect(() => limits(-1)).toThrow(/inbound\.limits\.maxPeerIdLabels/);
  });

  it('ok/the default is the sidecar config default (inbound.limits.maxPeerIdLabels)', () => {
    expect(new Metrics().peerIds.max).toBe(DEFAULT_MAX_PEER_ID_LABELS);
    expect(INBOUND_LIMIT_DEFAULTS.maxPeerIdLabels).toBe(DEFAULT_MAX_PEER_ID_LABELS);
  });

  it('ok/5,000 distinct peers through the request and TCP counters: N + 1 peer_id values, in every direction', async () => {
    const log = logLines('sidecar');
    const metrics = new Metrics();
    metrics.peerIds.setMax(50);
    const inbound = new DataPlaneTelemetry('inbound', metrics, log.logger);
    const outbound = new DataPlaneTelemetry('outbound', metrics, log.logger);
    const tcp = new TcpTelemetry('inbound', metrics, log.logger);
    for (let n = 0; n < 5_000; n++) {
      inbound.completed(peer(n), 200, 0);
      outbound.completed(peer(n), n % 2 === 0 ? 200 : 503, 0);
      tcp.opened(peer(n));
    }
    inbound.completed('', 401, 0);
    const requests = await peerIdValues(metrics, 'meshauth_requests_total');
    // The first 50 IDs (shared by both directions) and `other`, plus the unauthenticated ''.
    expect(requests.size).toBe(52);
    expect(requests.has(PEER_ID_OVERFLOW)).toBe(true);
    expect(requests.has(peer(49))).toBe(true);
    expect(requests.has(peer(50))).toBe(false);
    const tcpValues = await peerIdValues(metrics, 'meshauth_tcp_connections_total');
    expect(tcpValues.size).toBe(51);
    // Nothing is lost: the overflow counts every request of the peers past the bound.
    const text = await metrics.registry.metrics();
    const other = Number(
      /^meshauth_requests_total\{direction="inbound",peer_id="other",code="200"\} (\d+)$/m.exec(text)?.[1],
    );
    expect(other).toBe(5_000 - 50);
    expect(log.find({ event: 'peer_id_labels_full' })).toHaveLength(1);
  });
});
