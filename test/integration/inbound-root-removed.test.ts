// A root that leaves the trust bundle cuts the live connections of peers whose chain leads to it: new handshakes
// already use the new bundle; established ones are closed when the credentials switch, with a metric and one log line.
// Peers of the roots that stay keep their connections.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrustBundle } from '../../src/pki/index.js';
import { createLogger } from '../../src/telemetry/index.js';
import { eventually, h2GetStatus, mtlsH2Session } from '../helpers/raw-app.js';
import { startTestSidecar, type TestSidecar, testConfig } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

describe('trust bundle loses a root', () => {
  let kept: TestCa;
  let retired: TestCa;
  let app: Server;
  let sidecar: TestSidecar;
  const logs: Record<string, unknown>[] = [];

  beforeAll(async () => {
    kept = await TestCa.create('example.org');
    retired = await TestCa.create('example.org');
    app = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n')) if (line !== '') logs.push(JSON.parse(line));
        done();
      },
    });
    sidecar = await startTestSidecar(
      kept,
      kept.idFor('/ns/shop/sa/b'),
      testConfig({ appPort: (app.address() as AddressInfo).port }),
      {
        bundle: new TrustBundle(kept.trustDomain, [...kept.bundle.roots, ...retired.bundle.roots]),
        logger: createLogger({ level: 'info', destination: sink }),
      },
    );
  });
  afterAll(async () => {
    await sidecar?.sidecar.close(0);
    app?.closeAllConnections();
    await new Promise((resolve) => app?.close(resolve));
  });

  it('fail/the removed root’s peer is cut; ok/the kept root’s peer stays connected', async () => {
    const bothRoots = `${kept.bundlePem}${retired.bundlePem}`;
    const stays = await mtlsH2Session(
      sidecar.sidecar.inboundPort,
      await kept.issue({ id: kept.idFor('/ns/shop/sa/a') }),
      bothRoots,
    );
    const goes = await mtlsH2Session(
      sidecar.sidecar.inboundPort,
      await retired.issue({ id: retired.idFor('/ns/shop/sa/old') }),
      bothRoots,
    );
    expect(await h2GetStatus(stays)).toBe(200);
    expect(await h2GetStatus(goes)).toBe(200);

    const current = sidecar.holder.current;
    if (current === undefined) throw new Error('no credentials');
    sidecar.holder.set({ svid: current.svid, bundle: kept.bundle });

    expect(await eventually(() => goes.closed || goes.destroyed)).toBe(true);
    expect(stays.closed || stays.destroyed).toBe(false);
    expect(await h2GetStatus(stays)).toBe(200);
    const text = await sidecar.metrics.registry.getSingleMetricAsString('meshauth_connections_rejected_total');
    expect(text).toContain('direction="inbound",reason="root_removed"} 1');
    expect(logs.filter((l) => l.msg === 'connections closed: their root left the trust bundle')).toHaveLength(1);
    // A new handshake with the removed root is refused at once (under TLS 1.3 the client learns it when its first
    // request finds the connection closed: no response status).
    const retry = await mtlsH2Session(
      sidecar.sidecar.inboundPort,
      await retired.issue({ id: retired.idFor('/ns/shop/sa/old') }),
      bothRoots,
    )
      .then(h2GetStatus)
      .catch(() => 0);
    expect(retry).toBe(0);
    stays.close();
  });
});
