// A root that leaves the trust bundle must also cut a connection whose TLS handshake was still under way
// when the bundle switched. Node binds a server socket to the secure
// context current when the TCP connection was accepted; setSecureContext() only changes the context of later
// sockets. A peer of the removed root that connected before the switch and finishes its handshake after it is
// verified against the old roots, and #keepOnlyPeersOf (run at the switch) never saw it.
import { createServer, type Server } from 'node:http';
import { type ClientHttp2Session, connect as h2Connect } from 'node:http2';
import { type AddressInfo, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrustBundle } from '../../src/pki/index.js';
import { h2GetStatus } from '../helpers/raw-app.js';
import { connectionsOpen, startTestSidecar, type TestSidecar, testConfig } from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

/** TCP first (accepted under the current context), the mTLS handshake only when `handshake()` is called. */
async function tcpThenTls(port: number, svid: TestSvid, caPem: string) {
  const raw: Socket = await new Promise((resolve, reject) => {
    const s = netConnect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
  return {
    raw,
    handshake: (): Promise<ClientHttp2Session> =>
      new Promise((resolve) => {
        const session = h2Connect('https://127.0.0.1', {
          createConnection: () =>
            tlsConnect({
              socket: raw,
              cert: svid.chainPem,
              key: svid.keyPem,
              ca: [caPem],
              ALPNProtocols: ['h2'],
              checkServerIdentity: () => undefined,
            }),
        });
        session.on('error', () => undefined);
        resolve(session);
      }),
  };
}

describe('root removed while a peer of that root is mid-handshake', () => {
  let kept: TestCa;
  let retired: TestCa;
  let app: Server;
  let sidecar: TestSidecar;
  let appRequests = 0;

  beforeAll(async () => {
    kept = await TestCa.create('example.org');
    retired = await TestCa.create('example.org');
    app = createServer((_req, res) => {
      appRequests++;
      res.end('ok');
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    sidecar = await startTestSidecar(
      kept,
      kept.idFor('/ns/shop/sa/b'),
      testConfig({ appPort: (app.address() as AddressInfo).port }),
      { bundle: new TrustBundle(kept.trustDomain, [...kept.bundle.roots, ...retired.bundle.roots]) },
    );
  });
  afterAll(async () => {
    await sidecar?.sidecar.close(0);
    app?.closeAllConnections();
    await new Promise((resolve) => app?.close(resolve));
  });

  const openInbound = () => connectionsOpen(sidecar.metrics, 'inbound');
  /** The guard counts a connection open as it hands it to the TLS server (bound to the context current then). */
  const handedOver = (open: number) =>
    waitFor(`${open} inbound connection(s) handed to the TLS server`, async () => (await openInbound()) === open);

  it('fail/a peer of the removed root that connected before the switch never reaches the app', async () => {
    await handedOver(0);
    const bothRoots = `${kept.bundlePem}${retired.bundlePem}`;
    const pending = await tcpThenTls(
      sidecar.sidecar.inboundPort,
      await retired.issue({ id: retired.idFor('/ns/shop/sa/old') }),
      bothRoots,
    );
    // The guard has handed the accepted socket to the TLS server (bound to the two-root context).
    await handedOver(1);

    const current = sidecar.holder.current;
    if (current === undefined) throw new Error('no credentials');
    sidecar.holder.set({ svid: current.svid, bundle: kept.bundle });

    const before = appRequests;
    const session = await pending.handshake();
    const status = await h2GetStatus(session).catch(() => 0);
    session.destroy();
    pending.raw.destroy();
    expect(status).toBe(0);
    expect(appRequests).toBe(before);
  });

  it('ok/a peer of the kept root that connected before a removal is served', async () => {
    const current = sidecar.holder.current;
    if (current === undefined) throw new Error('no credentials');
    const bothRoots = new TrustBundle(kept.trustDomain, [...kept.bundle.roots, ...retired.bundle.roots]);
    sidecar.holder.set({ svid: current.svid, bundle: bothRoots });
    await handedOver(0);
    const pending = await tcpThenTls(
      sidecar.sidecar.inboundPort,
      await kept.issue({ id: kept.idFor('/ns/shop/sa/a') }),
      `${kept.bundlePem}${retired.bundlePem}`,
    );
    await handedOver(1);
    sidecar.holder.set({ svid: current.svid, bundle: kept.bundle });
    const session = await pending.handshake();
    expect(await h2GetStatus(session)).toBe(200);
    session.close();
  });
});
