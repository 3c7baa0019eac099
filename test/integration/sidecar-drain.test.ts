// Shutdown, where in-flight requests finish: close(drain) turns readiness off at once, refuses new connections, lets a
// slow in-flight request complete, then closes. The CLI's SIGTERM handler calls exactly this close().
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SidecarPair, startPair, viaProxy } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

describe('graceful drain', () => {
  let pair: SidecarPair;
  let release: () => void = () => undefined;
  let arrived: () => void = () => undefined;
  const slowArrived = new Promise<void>((resolve) => {
    arrived = resolve;
  });
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });

  beforeAll(async () => {
    pair = await startPair(await TestCa.create(), {
      drainTimeout: '10s',
      appHandler: (req, res) => {
        if (req.url === '/slow') {
          arrived();
          void released.then(() => res.end('finished'));
          return;
        }
        res.end('ok');
      },
    });
  });
  afterAll(async () => {
    release();
    await pair?.close();
  });

  it('ok/a slow request in flight completes while both sidecars drain', async () => {
    const readyz = (port: number) =>
      fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.status,
        () => 0,
      );
    expect(await readyz(pair.b.sidecar.adminPort)).toBe(200);
    const inFlight = viaProxy(pair.a.sidecar.outboundPort, 'http://b.mesh/slow');
    await slowArrived;

    const closingB = pair.b.sidecar.close(10_000);
    const closingA = pair.a.sidecar.close(10_000);
    expect(pair.b.sidecar.ready()).toBe(false);
    expect(await readyz(pair.b.sidecar.adminPort)).toBe(503);
    // The inbound listener no longer accepts connections.
    const refused = await new Promise<boolean>((resolve) => {
      const socket = connect(pair.b.sidecar.inboundPort, '127.0.0.1');
      socket.once('error', () => resolve(true));
      socket.once('connect', () => {
        socket.destroy();
        resolve(false);
      });
    });
    expect(refused).toBe(true);

    release();
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(res.body).toBe('finished');
    await Promise.all([closingA, closingB]);
  }, 30_000);
});
