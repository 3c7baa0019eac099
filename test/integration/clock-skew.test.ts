// Clock skew between a workload and the CA or its peers, with injected clocks on real sockets: the CA backdates
// NotBefore by one minute (BACKDATE_MS), so an agent or a sidecar up to a minute behind accepts an SVID issued just
// now, and one ahead accepts it for as long as it is valid by its clock; 10 min behind, the SVID is refused as not yet
// valid — by the agent (never installed) and by a sidecar's inbound (the handshake dropped, counted under
// meshauth_tls_handshake_failures_total{reason="not_yet_valid"}) — with a log line that names clock skew as the likely
// cause.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialHolder } from '../../src/agent/credential-holder.js';
import { BACKDATE_MS } from '../../src/pki/index.js';
import { type RunningSidecar, startSidecar } from '../../src/sidecar/index.js';
import { Metrics } from '../../src/telemetry/index.js';
import { type LogLines, logLines } from '../helpers/log-lines.js';
import { rawTlsExchange } from '../helpers/raw-tls.js';
import { startApp, startTestSidecar, type TestApp, testConfig, viaProxy } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';
import { CaHarness, type Cleanup, rotations, runCleanups, startAgent } from './agent-harness.js';

const MINUTE = 60_000;

describe('agent clock vs the CA (F07)', () => {
  const cleanups: Cleanup[] = [];
  let ca: CaHarness;

  beforeAll(async () => {
    ca = await CaHarness.start(3_600_000, cleanups);
  });
  afterAll(() => runCleanups(cleanups));

  it('ok/the CA backdates NotBefore by one minute: an agent 30 s behind installs its SVID, no skew warning', async () => {
    const issuedAfter = Date.now();
    const agent = startAgent(ca, await ca.token(), cleanups, { now: () => new Date(Date.now() - 30_000) });
    const current = await waitFor('the SVID installed', () => agent.holder.current, 10_000);
    const notBefore = current.svid.notBefore.getTime();
    expect(notBefore).toBeGreaterThanOrEqual(Math.floor((issuedAfter - BACKDATE_MS) / 1000) * 1000);
    expect(notBefore).toBeLessThanOrEqual(Date.now() - BACKDATE_MS);
    expect(agent.logs.filter((l) => String(l.msg).includes('clock skew'))).toEqual([]);
  });

  it('ok/an agent 10 min ahead installs a 1 h SVID and logs clock skew against the CA', async () => {
    const agent = startAgent(ca, await ca.token(), cleanups, { now: () => new Date(Date.now() + 10 * MINUTE) });
    await waitFor('the SVID installed', () => agent.holder.current, 10_000);
    const skew = agent.logs.find((l) => l.msg === 'clock skew suspected between this workload and the CA');
    expect(skew?.skewMs).toBeLessThan(-9 * MINUTE);
  });

  it('fail/an agent 10 min behind refuses the SVID as not yet valid and logs clock skew as the likely cause', async () => {
    const agent = startAgent(ca, await ca.token(), cleanups, { now: () => new Date(Date.now() - 10 * MINUTE) });
    await waitFor('a failed attempt', async () => (await rotations(agent.metrics, 'failure')) >= 1, 10_000);
    expect(agent.holder.current).toBeUndefined();
    const lines = agent.logs.map((l) => String(l.msg));
    expect(lines).toContain('clock skew suspected: the CA issued an SVID that is not yet valid by our clock');
    expect(
      agent.logs.find((l) => l.msg === 'clock skew suspected between this workload and the CA')?.skewMs,
    ).toBeGreaterThan(9 * MINUTE);
  });
});

describe('sidecar clock vs its peers (F07)', () => {
  let ca: TestCa;
  let app: TestApp;
  const sidecars: RunningSidecar[] = [];

  beforeAll(async () => {
    ca = await TestCa.create();
    app = await startApp();
  });
  afterAll(async () => {
    for (const sidecar of sidecars) await sidecar.close(0);
    await app?.close();
  });

  /** A sidecar whose clock is `offsetMs` off, holding an SVID valid by its clock and by its clients'. */
  async function skewedSidecar(
    offsetMs: number,
    routes: Record<string, { address: string; ids: string[] }> = {},
  ): Promise<{ sidecar: RunningSidecar; port: number; metrics: Metrics; logs: LogLines }> {
    const now = () => new Date(Date.now() + offsetMs);
    const svid = await ca.issue({
      id: ca.idFor('/ns/a/sa/server'),
      notBefore: new Date(Date.now() + Math.min(0, offsetMs) - BACKDATE_MS),
      notAfter: new Date(Date.now() + Math.max(0, offsetMs) + 3_600_000),
    });
    const metrics = new Metrics();
    const logs = logLines('sidecar', 'info');
    const sidecar = await startSidecar(testConfig({ appPort: app.port, routes }), {
      logger: logs.logger,
      metrics,
      holder: new CredentialHolder({ svid: svid.svid, bundle: ca.bundle }),
      now,
    });
    sidecars.push(sidecar);
    return { sidecar, port: sidecar.inboundPort, metrics, logs };
  }

  const get = async (port: number) => {
    const client = await ca.issue({ id: ca.idFor('/ns/a/sa/client') }); // issued now by the CA's (real) clock
    const reply = await rawTlsExchange(
      port,
      client,
      ca.bundlePem,
      'GET /x HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n',
    ).catch(() => '');
    return reply.split('\r\n', 1)[0] ?? '';
  };
  const notYetValid = async (metrics: Metrics) =>
    (await metrics.tlsHandshakeFailures.get()).values.find(
      (v) => v.labels.direction === 'inbound' && v.labels.reason === 'not_yet_valid',
    )?.value ?? 0;

  it('ok/a sidecar 30 s behind accepts a peer SVID issued just now (inside the one-minute backdate)', async () => {
    const { port } = await skewedSidecar(-30_000);
    expect(await get(port)).toBe('HTTP/1.1 200 OK');
  });

  it('ok/a sidecar 10 min ahead accepts a 1 h peer SVID issued just now', async () => {
    const { port } = await skewedSidecar(10 * MINUTE);
    expect(await get(port)).toBe('HTTP/1.1 200 OK');
  });

  it('fail/a sidecar 10 min behind refuses a peer SVID issued just now: dropped, counted not_yet_valid, a log line naming clock skew', async () => {
    const { port, metrics, logs } = await skewedSidecar(-10 * MINUTE);
    const seen = app.seen.length;
    expect(await get(port)).toBe('');
    expect(app.seen.length).toBe(seen);
    expect(await notYetValid(metrics)).toBe(1);
    const lines = logs.find({ reason: 'not_yet_valid' });
    expect(lines).toHaveLength(1);
    expect(String(lines[0]?.msg)).toContain('clock skew');
    expect(lines[0]).toMatchObject({ level: 'warn', direction: 'inbound' });
    expect(String(lines[0]?.error)).toContain('not valid before');
    expect(typeof lines[0]?.localTime).toBe('string');
  });

  it('fail/a sidecar 10 min behind refuses a server SVID issued just now: 502 MESHAUTH_ERR_PEER_IDENTITY, a log line naming clock skew', async () => {
    const idB = ca.idFor('/ns/b/sa/b');
    const b = await startTestSidecar(ca, idB, testConfig({ appPort: app.port })); // its SVID issued now
    sidecars.push(b.sidecar);
    const { sidecar, logs } = await skewedSidecar(-10 * MINUTE, {
      'b.mesh': { address: `127.0.0.1:${b.sidecar.inboundPort}`, ids: [idB] },
    });
    const seen = app.seen.length;
    const res = await viaProxy(sidecar.outboundPort, 'http://b.mesh/x');
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body).code).toBe('MESHAUTH_ERR_PEER_IDENTITY');
    expect(app.seen.length).toBe(seen);
    const line = logs.lines.find((l) => l.code === 'MESHAUTH_ERR_PEER_IDENTITY');
    expect(String(line?.msg)).toContain('clock skew');
    expect(typeof line?.localTime).toBe('string');
  });
});
