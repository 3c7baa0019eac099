// The outbound's check of the CA certificates a server sent above its leaf (C15 on the client side), over real TLS:
// every sent certificate that signed the leaf or one above it is checked, whatever the order, and a sent
// certificate that signed nothing on the way is left alone. Found in review: on a TLS client Node's issuer links are
// the list in the order sent, and the check followed at most 8 of them, so a server sending 8 copies of a good
// intermediate before the leaf's real issuer (one with a workload ID, which OpenSSL verified the leaf through) was
// accepted; and an honest server that added an unrelated workload certificate was refused. Certificates that name the
// leaf's issuer without having signed it each cost a signature check on a key of the server's choosing: past two, the
// chain is refused.
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMeshauthError } from '../../src/errors/index.js';
import { SpiffeId } from '../../src/identity/index.js';
import type { x509 } from '../../src/pki/index.js';
import { clientSecureContext, connectPeer, PeerConnectError, peerConnectFailureReason } from '../../src/tls/index.js';
import { lookalikeOf } from '../helpers/issuer-chain.js';
import { PEER_HOST, peerServerTls, startRoutedSidecar, viaProxy } from '../helpers/sidecar-harness.js';
import { rawClient } from '../helpers/tcp-client.js';
import { echo, startTcpApp, startTcpTunnelPair } from '../helpers/tcp-tunnel-pair.js';
import { presenting, TestCa, type TestSvid } from '../helpers/test-ca.js';

/** A TLS server presenting `svid` that drops the connection at its first byte; counts the bytes it got. */
async function peerServer(
  ca: TestCa,
  svid: TestSvid,
): Promise<{ server: TlsServer; port: number; bytes: () => number }> {
  let bytes = 0;
  const server = createTlsServer({ ...peerServerTls(svid, ca), ALPNProtocols: ['h2', 'http/1.1'] }, (socket) => {
    socket.on('error', () => undefined);
    socket.on('data', (data: Buffer) => {
      bytes += data.length;
      socket.destroy();
    });
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { server, port: address.port, bytes: () => bytes };
}

describe('outbound: the CA certificates a server sent are checked along every signed path from its leaf', () => {
  let ca: TestCa;
  let other: TestCa;
  const servers: TlsServer[] = [];
  const chains: Record<string, TestSvid> = {};
  const serverId = () => ca.idFor('/ns/data/sa/db');

  beforeAll(async () => {
    ca = await TestCa.create('example.org');
    other = await TestCa.create('example.org');
    const id = serverId();
    // The leaf's real issuer carries a workload ID (refused when seen); the padding is the CA's good intermediate.
    const bad = await ca.issueThrough([{ uris: [ca.idFor('/ns/shop/sa/admin')], pathLength: 0 }], { id });
    const badIntermediate = bad.svid.certificates[1] as x509.X509Certificate;
    const good = await ca.issue({ id });
    const stray = (await ca.issue({ id: ca.idFor('/ns/shop/sa/other') })).leaf;
    const underRoot = await ca.issueThrough([], { id });
    chains.padded = presenting(bad, [...Array(8).fill(ca.intermediate), badIntermediate]);
    chains.tooMany = presenting(good, [...Array(40).fill(ca.intermediate)]);
    chains.noSigner = presenting(underRoot, [other.intermediate]);
    chains.strayAfter = presenting(good, [ca.intermediate, stray]);
    chains.strayBefore = presenting(good, [stray, ca.intermediate]);
    chains.rootFirst = presenting(good, [ca.root, ca.intermediate]);
    chains.foreignPadding = presenting(good, [...Array(8).fill(other.intermediate), ca.intermediate]);
    const lookalikes = await Promise.all([0, 1, 2].map(() => lookalikeOf(ca.intermediate)));
    chains.lookalikes = presenting(good, [ca.intermediate, ...lookalikes]);
  });
  afterAll(async () => {
    for (const server of servers) await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  async function connectTo(svid: TestSvid) {
    const peer = await peerServer(ca, svid);
    servers.push(peer.server);
    const client = await ca.issue({ id: ca.idFor('/ns/shop/sa/client') });
    const secureContext = clientSecureContext({ tls12: false }, { svid: client.svid, bundle: ca.bundle });
    const connection = await connectPeer({
      host: '127.0.0.1',
      port: peer.port,
      secureContext,
      trustDomain: ca.trustDomain,
      accepts: (peerId: SpiffeId) => peerId.equals(SpiffeId.parse(serverId())),
      alpn: ['http/1.1'],
      timeoutMs: 5_000,
    });
    connection.socket.destroy();
    return connection;
  }

  it.each([
    ['fail/the real issuer, with a workload ID, after 8 copies of a good intermediate', 'padded'],
    ['fail/more than 32 certificates above the leaf', 'tooMany'],
    ['fail/a CA certificate that did not sign the leaf, sent with a leaf the root signed', 'noSigner'],
    ['fail/three certificates that name the leaf’s issuer and did not sign it, after the real one', 'lookalikes'],
  ])('%s → refused before any byte, bad_intermediate', async (_t, name) => {
    const error = await connectTo(chains[name] as TestSvid).then(
      () => undefined,
      (cause: unknown) => cause,
    );
    expect(error).toBeInstanceOf(PeerConnectError);
    const refused = error as PeerConnectError;
    expect(refused.phase).toBe('identity');
    expect(isMeshauthError(refused.cause, 'MESHAUTH_ERR_PEER_IDENTITY')).toBe(true);
    expect(peerConnectFailureReason(refused.phase, refused.cause)).toBe('bad_intermediate');
  });

  it.each([
    ['ok/an unrelated workload certificate sent after the intermediate', 'strayAfter'],
    ['ok/an unrelated workload certificate sent before the intermediate', 'strayBefore'],
    ['ok/the root sent before the intermediate', 'rootFirst'],
    ['ok/8 copies of another CA’s intermediate before the real one', 'foreignPadding'],
  ])('%s → connected', async (_t, name) => {
    expect((await connectTo(chains[name] as TestSvid)).peerIdString).toBe(serverId());
  });

  it('fail/the padded chain through the sidecar: 502 MESHAUTH_ERR_PEER_IDENTITY, no byte, counted', async () => {
    const peer = await peerServer(ca, chains.padded as TestSvid);
    servers.push(peer.server);
    const client = await startRoutedSidecar(ca, peer.port, serverId());
    try {
      const res = await viaProxy(client.sidecar.outboundPort, `http://${PEER_HOST}/x`);
      expect(res.status).toBe(502);
      expect(JSON.parse(res.body).code).toBe('MESHAUTH_ERR_PEER_IDENTITY');
      expect(peer.bytes()).toBe(0);
      expect(await client.metrics.registry.getSingleMetricAsString('meshauth_tls_handshake_failures_total')).toContain(
        'meshauth_tls_handshake_failures_total{direction="outbound",reason="bad_intermediate"}',
      );
    } finally {
      await client.sidecar.close(0);
    }
  });

  it('fail/the padded chain on a TCP tunnel: reset before the app connects, counted bad_intermediate', async () => {
    const app = await startTcpApp(echo);
    const pair = await startTcpTunnelPair(ca, { appPort: app.port, serverSvid: chains.padded as TestSvid });
    try {
      const client = await rawClient(pair.port);
      expect((await client.closed)?.code).toBe('ECONNRESET');
      expect(app.sockets.length).toBe(0);
      const text = await pair.clientMetrics.registry.metrics();
      expect(text).toContain(
        `meshauth_tcp_connections_total{direction="outbound",peer_id="${serverId()}",result="peer_identity"} 1`,
      );
      expect(text).toContain('meshauth_tls_handshake_failures_total{direction="outbound",reason="bad_intermediate"} 1');
    } finally {
      await pair.close();
      await app.close();
    }
  });
});
