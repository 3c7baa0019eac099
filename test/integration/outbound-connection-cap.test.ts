// The outbound listener's cap on open connections, on real sockets. Found in review: the listener the app calls had
// no cap at all, so a local process with a connection leak (or a hostile one) could open connections until the
// sidecar ran out of file descriptors or memory, and the inbound with it: the pod stopped receiving mesh traffic
// because of its own app. Now: past `outbound.limits.maxConnections` (default 1,024) a connection is closed at accept with nothing
// written, counted in meshauth_connections_rejected_total{direction="outbound",reason="max_connections"} and logged
// once per interval, as the inbound's listener does; admitted connections and their requests are unaffected, and a
// connection that closes frees its place.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialHolder } from '../../src/agent/credential-holder.js';
import { OUTBOUND_LIMIT_DEFAULTS } from '../../src/config/index.js';
import { openFileLimit } from '../../src/sidecar/inbound/fd-budget.js';
import { outboundConnectionCap } from '../../src/sidecar/outbound/outbound-connection-cap.js';
import { OutboundListener } from '../../src/sidecar/outbound/outbound-listener.js';
import { Metrics } from '../../src/telemetry/index.js';
import { logLines } from '../helpers/log-lines.js';
import {
  connectionsOpen,
  startApp,
  startTestSidecar,
  type TestApp,
  type TestSidecar,
  testConfig,
} from '../helpers/sidecar-harness.js';
import { type RawClient, rawClient } from '../helpers/tcp-client.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

const REFUSED = 'connection refused: max_connections';

async function refusedAtCap(metrics: Metrics): Promise<number> {
  const values = (await metrics.connectionsRejected.get()).values;
  return values.find((v) => v.labels.direction === 'outbound' && v.labels.reason === 'max_connections')?.value ?? 0;
}

/**
 * Sends one request for `b.mesh` on `client` and resolves with the answer's status once its head has arrived, or 0
 * if the connection closed without one (refused at accept).
 */
async function statusOf(client: RawClient): Promise<number> {
  const before = client.received().length;
  client.socket.write('GET http://b.mesh/cap HTTP/1.1\r\nhost: b.mesh\r\n\r\n');
  const { status } = await waitFor('the answer', () => {
    const text = client.received().subarray(before).toString('latin1');
    if (text.includes('\r\n\r\n')) return { status: Number(text.split(' ')[1]) };
    return client.socket.destroyed ? { status: 0 } : undefined;
  });
  return status;
}

/** Opens `count` connections to `port`, in batches (a few hundred at once would only queue in the kernel). */
async function openMany(port: number, count: number): Promise<RawClient[]> {
  const clients: RawClient[] = [];
  for (let i = 0; i < count; i += 64) {
    clients.push(...(await Promise.all(Array.from({ length: Math.min(64, count - i) }, () => rawClient(port)))));
  }
  return clients;
}

describe('outbound listener: open connections from the app are capped', () => {
  let ca: TestCa;
  let app: TestApp;
  let b: TestSidecar;
  let routes: Record<string, { address: string; ids: string[] }>;
  const clients: RawClient[] = [];

  beforeAll(async () => {
    ca = await TestCa.create();
    app = await startApp();
    const idB = ca.idFor('/ns/shop/sa/b');
    b = await startTestSidecar(ca, idB, testConfig({ appPort: app.port }));
    routes = { 'b.mesh': { address: `127.0.0.1:${b.sidecar.inboundPort}`, ids: [idB] } };
  });
  afterAll(async () => {
    for (const client of clients) client.socket.destroy();
    await b?.sidecar.close(0);
    await app?.close();
  });

  it('fail/connections past the cap are closed at accept, counted, logged once; ok/admitted ones still get answers, and a closed one frees its place', async () => {
    const cap = 4;
    const extra = 3;
    const metrics = new Metrics();
    const log = logLines('outbound');
    const svid = await ca.issue({ id: ca.idFor('/ns/shop/sa/a') });
    const config = testConfig({ appPort: 1, routes });
    const listener = new OutboundListener({
      config: { ...config, outbound: { ...config.outbound, limits: { maxConnections: cap } } },
      holder: new CredentialHolder({ svid: svid.svid, bundle: ca.bundle }),
      metrics,
      logger: log.logger,
    });
    const port = await listener.listen();
    try {
      const admitted = await openMany(port, cap);
      clients.push(...admitted);
      // One at a time: each is accepted (by the kernel) and then closed by the listener before the next.
      const refused: RawClient[] = [];
      for (let i = 0; i < extra; i++) {
        const client = await rawClient(port);
        clients.push(client);
        refused.push(client);
        await waitFor('the connection past the cap closed', () => client.socket.destroyed);
      }
      expect(refused.map((client) => client.received().length)).toEqual([0, 0, 0]);
      await waitFor('the refusals counted', async () => (await refusedAtCap(metrics)) === extra);
      const lines = log.find({ msg: REFUSED });
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ event: 'connection_refused', direction: 'outbound', reason: 'max_connections' });

      expect(await Promise.all(admitted.map(statusOf))).toEqual([200, 200, 200, 200]);
      expect(admitted.every((client) => !client.socket.destroyed)).toBe(true);
      // The gauge counts what the cap counts: the admitted connections, not the ones refused at accept.
      expect(await connectionsOpen(metrics, 'outbound')).toBe(cap);

      // Two admitted connections close: two new ones are admitted and answered, while the cap still holds after them.
      for (const client of admitted.slice(0, 2)) client.socket.destroy();
      await waitFor('two admitted connections closed', () => admitted.slice(0, 2).every((c) => c.socket.destroyed));
      await waitFor('their places counted free', async () => (await connectionsOpen(metrics, 'outbound')) === cap - 2);
      const fresh: RawClient[] = [];
      await waitFor('two places freed', async () => {
        const client = await rawClient(port);
        clients.push(client);
        if ((await statusOf(client)) === 200) fresh.push(client);
        return fresh.length === 2;
      });
      const past = await rawClient(port);
      clients.push(past);
      await waitFor('the connection past the cap closed', () => past.socket.destroyed);
      expect(past.received().length).toBe(0);
      expect(await statusOf(admitted[2] as RawClient)).toBe(200);
    } finally {
      await listener.close(Date.now());
    }
  });

  it('ok/a sidecar started with the default config applies the measured cap: every connection up to it is admitted, the next refused', async () => {
    const a = await startTestSidecar(ca, ca.idFor('/ns/shop/sa/a'), testConfig({ appPort: 1, routes }));
    try {
      // Lowered only where this process's open-file limit cannot hold it beside the inbound's cap.
      expect(a.config.outbound.limits.maxConnections).toBe(OUTBOUND_LIMIT_DEFAULTS.maxConnections);
      expect(OUTBOUND_LIMIT_DEFAULTS.maxConnections).toBe(1024);
      const cap = outboundConnectionCap(1024, openFileLimit(), a.config.inbound.limits);
      const admitted = await openMany(a.sidecar.outboundPort, cap);
      clients.push(...admitted);
      const past = await rawClient(a.sidecar.outboundPort);
      clients.push(past);
      await waitFor('the connection past the cap closed', () => past.socket.destroyed);
      expect(past.received().length).toBe(0);
      expect(await refusedAtCap(a.metrics)).toBe(1);
      expect(await statusOf(admitted[admitted.length - 1] as RawClient)).toBe(200);
      for (const client of admitted) client.socket.destroy();
    } finally {
      await a.sidecar.close(0);
    }
  });
});
