// Admin endpoints: /livez + /healthz, /startupz (valid SVID, app not needed), /readyz (valid SVID + app reachable),
// /app-health/... (404 when the sidecar has no app probes), /metrics exposition that `promtool check metrics` accepts
// (skipped with a reason when promtool is not installed).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { available, runCommand, type SidecarPair, startPair, viaProxy } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

const HAVE_PROMTOOL = available('promtool');
if (!HAVE_PROMTOOL) console.warn('sidecar-admin: promtool not on PATH (Debian package prometheus), skipping lint');

describe('admin server', () => {
  let pair: SidecarPair;
  const admin = (path: string) => fetch(`http://127.0.0.1:${pair.b.sidecar.adminPort}${path}`);

  beforeAll(async () => {
    pair = await startPair(await TestCa.create());
    await viaProxy(pair.a.sidecar.outboundPort, 'http://b.mesh/warm'); // populate the request metrics
    await viaProxy(pair.a.sidecar.outboundPort, 'http://nowhere/x'); // and a rejection
  });
  afterAll(async () => {
    await pair?.close();
  });

  it('ok/healthz and livez', async () => {
    expect((await admin('/healthz')).status).toBe(200);
    expect((await admin('/livez')).status).toBe(200);
  });

  it('ok/startupz is 200 with a valid SVID even though the app is down (no start deadlock)', async () => {
    // A's inbound app is 127.0.0.1:1, where nothing listens; its /readyz is 503 (below), /startupz must not be.
    expect((await fetch(`http://127.0.0.1:${pair.a.sidecar.adminPort}/startupz`)).status).toBe(200);
  });

  it('fail/app-health of a container the config does not name is 404', async () => {
    expect((await admin('/app-health/app/livez')).status).toBe(404);
  });

  it('ok/readyz is 200 with a valid SVID and a reachable app', async () => {
    expect((await admin('/readyz')).status).toBe(200);
  });

  it('fail/readyz is 503 when the app does not accept connections', async () => {
    // A's inbound app is 127.0.0.1:1, where nothing listens.
    const res = await fetch(`http://127.0.0.1:${pair.a.sidecar.adminPort}/readyz`);
    expect(res.status).toBe(503);
  });

  it('fail/unknown path → 404, POST → 405', async () => {
    expect((await admin('/shutdown')).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${pair.b.sidecar.adminPort}/metrics`, { method: 'POST' })).status).toBe(405);
  });

  it('ok/metrics exposition has the SPEC §8 families', async () => {
    const res = await admin('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toContain('meshauth_requests_total{direction="inbound"');
    expect(text).toContain('meshauth_request_duration_seconds_bucket');
    expect(text).toContain('meshauth_svid_expiry_timestamp_seconds');
  });

  it("ok/the SVID's notBefore is exported beside its expiry, so the expiry alert knows its lifetime", async () => {
    const text = await (await admin('/metrics')).text();
    const gauge = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
    const notBefore = gauge('meshauth_svid_not_before_timestamp_seconds');
    const expiry = gauge('meshauth_svid_expiry_timestamp_seconds');
    expect(notBefore).toBeGreaterThan(0);
    expect(expiry).toBeGreaterThan(notBefore);
  });

  it('ok/a sidecar exposes none of the CA gauges: an unset 0 would read as a CA that cannot sign and page', async () => {
    for (const port of [pair.a.sidecar.adminPort, pair.b.sidecar.adminPort]) {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(text).toContain('meshauth_svid_expiry_timestamp_seconds');
      expect(text).not.toContain('meshauth_ca_issuer_valid');
      expect(text).not.toContain('meshauth_ca_queue_depth');
      expect(text).not.toContain('meshauth_ca_connections_waiting');
    }
  });

  it.skipIf(!HAVE_PROMTOOL)('ok/promtool check metrics accepts the real output of both sidecars', async () => {
    for (const port of [pair.a.sidecar.adminPort, pair.b.sidecar.adminPort]) {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const result = await runCommand('promtool', ['check', 'metrics'], { input: text });
      expect(result.stdout + result.stderr).toBe('');
      expect(result.code).toBe(0);
    }
  });
});
