// A root that leaves the trust bundle cuts the outbound TCP tunnels whose server's leaf has no signed path to a root
// that stays, whatever else the server sent. Found in review: a server whose SVID is under the removed root, and that
// added the kept root's intermediate (public: every new SVID chain carries it) to its chain, kept its tunnel, and a
// handshake under way at the removal was let through, because a chain counted as kept when any certificate of it was
// signed by a kept root, on the leaf's path or not.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrustBundle, X509Svid, type x509 } from '../../src/pki/index.js';
import { rawClient, until } from '../helpers/tcp-client.js';
import { echo, startTcpApp, startTcpTunnelPair, type TcpApp, type TcpTunnelPair } from '../helpers/tcp-tunnel-pair.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';

/** `svid` presenting `above` after its leaf, in that order, instead of its own chain. */
function presenting(svid: TestSvid, above: readonly x509.X509Certificate[]): TestSvid {
  const certificates = [svid.leaf, ...above];
  return {
    ...svid,
    chainPem: `${certificates.map((cert) => cert.toString('pem')).join('\n')}\n`,
    svid: new X509Svid({ id: svid.svid.id, certificates, privateKeyPem: svid.keyPem, keyType: svid.keys.type }),
  };
}

/** A server of `retired`'s root sending the kept root's intermediate between its leaf and its own intermediate. */
async function withKeptIntermediate(kept: TestCa, retired: TestCa): Promise<TestSvid> {
  const svid = await retired.issue({ id: retired.idFor('/ns/data/sa/old') });
  return presenting(svid, [kept.intermediate, retired.intermediate]);
}

describe('an open outbound TCP tunnel to a server of a removed root that sends the kept root’s intermediate', () => {
  let kept: TestCa;
  let retired: TestCa;
  let app: TcpApp;
  let pair: TcpTunnelPair;

  beforeAll(async () => {
    kept = await TestCa.create('example.org');
    retired = await TestCa.create('example.org');
    app = await startTcpApp(echo);
    pair = await startTcpTunnelPair(kept, {
      appPort: app.port,
      serverSvid: await withKeptIntermediate(kept, retired),
      bundle: new TrustBundle(kept.trustDomain, [...kept.bundle.roots, ...retired.bundle.roots]),
    });
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
  let retired: TestCa;
  let app: TcpApp;
  let pair: TcpTunnelPair;
  let asked: () => void;
  const askedForAddress = new Promise<void>((resolve) => {
    asked = resolve;
  });
  let answer: () => void;
  const addressAnswered = new Promise<void>((resolve) => {
    answer = resolve;
  });

  beforeAll(async () => {
    kept = await TestCa.create('example.org');
    retired = await TestCa.create('example.org');
    app = await startTcpApp(echo);
    pair = await startTcpTunnelPair(kept, {
      appPort: app.port,
      serverSvid: await withKeptIntermediate(kept, retired),
      bundle: new TrustBundle(kept.trustDomain, [...kept.bundle.roots, ...retired.bundle.roots]),
      // The name's answer is held until the root has left: the connection took its TLS context (both roots)
      // before the removal, so its handshake verifies the server against the roots before it.
      addressHost: 'db.data.test',
      resolveHost: async () => {
        asked();
        await addressAnswered;
        return ['127.0.0.1'];
      },
    });
  });
  afterAll(async () => {
    answer?.();
    await pair?.close();
    await app?.close();
  });

  it('fail/is refused at the end of its handshake, counted unknown_ca', async () => {
    const client = await rawClient(pair.port);
    await askedForAddress;
    pair.clientHolder.set({ svid: pair.clientSvid.svid, bundle: kept.bundle });
    let closed = false;
    void client.closed.then(() => {
      closed = true;
    });
    client.socket.write('sent before the handshake ended');
    answer();

    // A tunnel let through would echo; the refusal resets the client without a byte.
    await until('the client is closed or echoed to', () => closed || client.received().length > 0);
    expect(client.received().length).toBe(0);
    expect((await client.closed)?.code).toBe('ECONNRESET');
    expect(await pair.clientMetrics.registry.metrics()).toContain(
      'meshauth_tls_handshake_failures_total{direction="outbound",reason="unknown_ca"} 1',
    );
    expect(app.sockets.length).toBe(0);
  });
});
