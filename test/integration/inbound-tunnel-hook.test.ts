// The inbound hands a verified connection that negotiated the tunnel ALPN to its tunnel handler (with the verified
// peer), after the same connection limits as HTTP; HTTP clients on the same port keep getting h2 / HTTP/1.1.
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialHolder } from '../../src/agent/credential-holder.js';
import { InboundListener } from '../../src/sidecar/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import type { VerifiedPeer } from '../../src/tls/index.js';
import { mtlsH2Session } from '../helpers/raw-app.js';
import { startApp, type TestApp, testConfig } from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';

const ALPN = 'meshauth-tcp/1';

describe('inbound tunnel hook', () => {
  let ca: TestCa;
  let app: TestApp;
  let client: TestSvid;
  let inbound: InboundListener;
  const adopted: VerifiedPeer[] = [];

  beforeAll(async () => {
    ca = await TestCa.create();
    app = await startApp();
    client = await ca.issue({ id: ca.idFor('/ns/shop/sa/client') });
    const server = await ca.issue({ id: ca.idFor('/ns/shop/sa/server') });
    inbound = new InboundListener({
      config: testConfig({ appPort: app.port }),
      holder: new CredentialHolder({ svid: server.svid, bundle: ca.bundle }),
      metrics: new Metrics(),
      logger: silentLogger(),
      tcp: {
        alpns: [ALPN],
        adopt: (socket, peer) => {
          adopted.push(peer);
          socket.end(`tunnel for ${peer.idString}`);
        },
      },
    });
    await inbound.listen();
  });
  afterAll(async () => {
    await inbound?.close(Date.now());
    await app?.close();
  });

  it('ok/a connection that negotiates the tunnel ALPN goes to the handler with its verified peer', async () => {
    const text = await new Promise<string>((resolve, reject) => {
      let received = '';
      const socket = tlsConnect({
        host: '127.0.0.1',
        port: inbound.port,
        cert: client.chainPem,
        key: client.keyPem,
        ca: [ca.bundlePem],
        checkServerIdentity: () => undefined,
        ALPNProtocols: [ALPN],
      });
      socket.on('data', (d: Buffer) => {
        received += d.toString();
      });
      socket.on('end', () => resolve(received));
      socket.on('error', reject);
    });
    expect(text).toBe(`tunnel for ${client.id}`);
    expect(adopted.at(-1)?.idString).toBe(client.id);
  });

  it('ok/h2 clients on the same port still reach the app', async () => {
    const session = await mtlsH2Session(inbound.port, client, ca.bundlePem);
    const status = await new Promise<number>((resolve) => {
      const stream = session.request({ ':path': '/x' }, { endStream: true });
      stream.on('response', (h) => resolve(Number(h[':status'])));
      stream.resume();
    });
    session.close();
    expect(status).toBe(200);
    expect(adopted).toHaveLength(1);
  });
});
