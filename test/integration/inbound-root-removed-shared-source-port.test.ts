// The inbound remembers when each connection was accepted (before or after the last root removal), by its TCP
// socket. Keyed by the remote `address|port` instead, it failed here: that pair is unique per local address only: the inbound listens on a
// wildcard by default (0.0.0.0:15006), so one source address and port can hold two open connections to the same
// TLS server through two local addresses (multi-homed pod, hostNetwork, loopback + pod IP). The second accept then
// overwrites the first's entry, and a peer of the removed root whose handshake was under way at the switch is
// taken for a connection accepted after it: never checked, served.
//
// Only 127.0.0.1 is used here: a second loopback server hands its sockets to the inbound's listening socket (as a
// wildcard listener accepts connections to its other local address). Both client sockets bind the same source
// port (libuv sets SO_REUSEADDR on bind).
import { createServer, type Server } from 'node:http';
import { connect as h2Connect } from 'node:http2';
import {
  type AddressInfo,
  createServer as createNetServer,
  type Server as NetServer,
  connect as netConnect,
  type Socket,
} from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { TrustBundle } from '../../src/pki/index.js';
import { h2GetStatus } from '../helpers/raw-app.js';
import { connectionsOpen, startTestSidecar, type TestSidecar, testConfig } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

// Every net.Server made while the sidecar starts: one of them is the inbound's guard, the listening socket whose
// accepted connections go on to TLS.
const netServers = vi.hoisted(() => [] as NetServer[]);
vi.mock('node:net', async (original) => {
  const net = await original<typeof import('node:net')>();
  const createServer = ((...args: Parameters<typeof net.createServer>) => {
    const server = net.createServer(...args);
    netServers.push(server);
    return server;
  }) as typeof net.createServer;
  return { ...net, default: { ...net, createServer }, createServer };
});

function connectFrom(localPort: number, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: '127.0.0.1', port, localAddress: '127.0.0.1', localPort }, () => resolve(s));
    s.once('error', reject);
  });
}

async function freePort(): Promise<number> {
  const probe = createNetServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

describe('root removed mid-handshake: two open connections with the same remote address|port', () => {
  let kept: TestCa;
  let retired: TestCa;
  let app: Server;
  let secondAddress: NetServer;
  let sidecar: TestSidecar;
  let appRequests = 0;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    kept = await TestCa.create('example.org');
    retired = await TestCa.create('example.org');
    app = createServer((_req, res) => {
      appRequests++;
      res.end('ok');
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    netServers.length = 0;
    sidecar = await startTestSidecar(
      kept,
      kept.idFor('/ns/shop/sa/b'),
      testConfig({ appPort: (app.address() as AddressInfo).port }),
      { bundle: new TrustBundle(kept.trustDomain, [...kept.bundle.roots, ...retired.bundle.roots]) },
    );
    const inboundPort = sidecar.sidecar.inboundPort;
    const guards = netServers.filter((server) => (server.address() as AddressInfo | null)?.port === inboundPort);
    expect(guards).toHaveLength(1);
    const inbound = guards[0] as NetServer;
    // The inbound's other local address: its connections go through the same guard and TLS as the first's.
    secondAddress = createNetServer((socket) => inbound.emit('connection', socket));
    await new Promise<void>((resolve) => secondAddress.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await sidecar?.sidecar.close(0);
    secondAddress?.close();
    app?.closeAllConnections();
    await new Promise((resolve) => app?.close(resolve));
  });

  /** The guard counts a connection open as it hands it to the TLS server (bound to the context current then). */
  const handedOver = (open: number) =>
    waitFor(
      `${open} inbound connection(s) handed to the TLS server`,
      async () => (await connectionsOpen(sidecar.metrics, 'inbound')) === open,
    );

  it('fail/a peer of the removed root, accepted before the switch, is refused although its source port was reused', async () => {
    const sourcePort = await freePort();
    // 1. The peer of the retired root connects (TCP only) while both roots are trusted.
    const early = await connectFrom(sourcePort, sidecar.sidecar.inboundPort);
    sockets.push(early);
    await handedOver(1);
    // 2. The retired root leaves the bundle.
    const current = sidecar.holder.current;
    if (current === undefined) throw new Error('no credentials');
    sidecar.holder.set({ svid: current.svid, bundle: kept.bundle });
    // 3. The same source address and port connects to the inbound's other local address (after the removal).
    const late = await connectFrom(sourcePort, (secondAddress.address() as AddressInfo).port);
    sockets.push(late);
    await handedOver(2);
    // 4. The early connection completes its handshake as a peer of the removed root.
    const svid = await retired.issue({ id: retired.idFor('/ns/shop/sa/old') });
    const before = appRequests;
    const session = h2Connect('https://127.0.0.1', {
      createConnection: () =>
        tlsConnect({
          socket: early,
          cert: svid.chainPem,
          key: svid.keyPem,
          ca: [kept.bundlePem, retired.bundlePem],
          ALPNProtocols: ['h2'],
          checkServerIdentity: () => undefined,
        }),
    });
    session.on('error', () => undefined);
    const status = await h2GetStatus(session).catch(() => 0);
    session.destroy();
    expect(status, 'a peer of the removed root was served').toBe(0);
    expect(appRequests).toBe(before);
  });
});
