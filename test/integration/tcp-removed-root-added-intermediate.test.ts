// A root that leaves the trust bundle cuts the outbound TCP tunnels whose server's leaf has no signed path to a root
// that stays, whatever else the server sent. Found in review: a server whose SVID is under the removed root, and that
// added the kept root's intermediate (public: every new SVID chain carries it) to its chain, kept its tunnel, and a
// handshake under way at the removal was let through, because a chain counted as kept when any certificate of it was
// signed by a kept root, on the leaf's path or not.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawClient, until } from '../helpers/tcp-client.js';
import {
  connectAcrossBundleChange,
  heldAddress,
  startRetiringRootTunnel,
  type TcpApp,
  type TcpTunnelPair,
} from '../helpers/tcp-tunnel-pair.js';
import { presenting, type TestCa, type TestSvid } from '../helpers/test-ca.js';

/** A server of `retired`'s root sending the kept root's intermediate between its leaf and its own intermediate. */
async function withKeptIntermediate(kept: TestCa, retired: TestCa): Promise<TestSvid> {
  const svid = await retired.issue({ id: retired.idFor('/ns/data/sa/old') });
  return presenting(svid, [kept.intermediate, retired.intermediate]);
}

describe('an open outbound TCP tunnel to a server of a removed root that sends the kept root’s intermediate', () => {
  let kept: TestCa;
  let app: TcpApp;
  let pair: TcpTunnelPair;

  beforeAll(async () => {
    ({ kept, app, pair } = await startRetiringRootTunnel({ serverSvid: withKeptIntermediate }));
  });
  afterAll(async () => {
    await pair?.close();
    await app?.close();
  });

  it('fail/is reset when the root leaves the bundle, counted root_removed', async () => {
    const client = await rawClient(pair.port);
    client.socket.write('before');
    await until('the tunnel echoes', () => client.received().toString() === 'before');

    pair.clientHolder.set({ svid: pair.clientSvid.svid, bundle: kept.bundle });
    expect((await client.closed)?.code).toBe('ECONNRESET');
    expect(await pair.clientMetrics.registry.metrics()).toContain(
      'meshauth_connections_rejected_total{direction="outbound",reason="root_removed"} 1',
    );
  });
});

describe('an outbound TCP handshake under way at the removal, with a server that sends the kept root’s intermediate', () => {
  let kept: TestCa;
  let app: TcpApp;
  let pair: TcpTunnelPair;
  // The name's answer is held until the root has left: the connection took its TLS context (both roots) before the
  // removal, so its handshake verifies the server against the roots before it.
  const held = heldAddress();

  beforeAll(async () => {
    ({ kept, app, pair } = await startRetiringRootTunnel({ serverSvid: withKeptIntermediate, held }));
  });
  afterAll(async () => {
    held.answer();
    await pair?.close();
    await app?.close();
  });

  it('fail/is refused at the end of its handshake, counted unknown_ca', async () => {
    const client = await connectAcrossBundleChange(pair, held, kept.bundle);

    // A tunnel let through would echo; the refusal resets the client without a byte.
    expect(client.received().length).toBe(0);
    expect((await client.closed)?.code).toBe('ECONNRESET');
    expect(await pair.clientMetrics.registry.metrics()).toContain(
      'meshauth_tls_handshake_failures_total{direction="outbound",reason="unknown_ca"} 1',
    );
    expect(app.sockets.length).toBe(0);
  });
});
