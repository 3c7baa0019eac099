// The peer connector (src/tls/peer-connector.ts) on real sockets: it returns the socket with the peer's verified
// SPIFFE ID, refuses an ID the caller does not accept before any byte is written, and says in which phase a
// failed attempt failed (connect, timeout, identity) — what decides retries and ejection.
import { createServer as createTcpServer, type Socket, type Server as TcpServer } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrustDomain } from '../../src/identity/index.js';
import { clientSecureContext, connectPeer, PeerConnectError, peerConnectFailureReason } from '../../src/tls/index.js';
import { TestCa } from '../helpers/test-ca.js';

describe('connectPeer', () => {
  let ca: TestCa;
  let server: TlsServer;
  let port = 0;
  let silent: TcpServer;
  let silentPort = 0;
  const held: Socket[] = [];
  const peerId = 'spiffe://example.org/ns/b/sa/b';
  let context: ReturnType<typeof clientSecureContext>;
  const trustDomain = TrustDomain.parse('example.org');

  beforeAll(async () => {
    ca = await TestCa.create();
    const peer = await ca.issue({ id: peerId });
    const client = await ca.issue({ id: ca.idFor('/ns/a/sa/a') });
    context = clientSecureContext({ tls12: false }, { svid: client.svid, bundle: ca.bundle });
    server = createTlsServer({
      cert: peer.chainPem,
      key: peer.keyPem,
      ca: ca.bundlePem,
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
    });
    server.on('secureConnection', (socket) => socket.on('error', () => undefined));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
    // Accepts TCP and never answers the ClientHello.
    silent = createTcpServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentPort = (silent.address() as { port: number }).port;
  });
  afterAll(() => {
    server?.close();
    for (const socket of held) socket.destroy();
    silent?.close();
  });

  const options = (overrides: Partial<Parameters<typeof connectPeer>[0]> = {}) => ({
    host: '127.0.0.1',
    port,
    secureContext: context,
    trustDomain,
    accepts: undefined,
    alpn: ['h2', 'http/1.1'],
    timeoutMs: 2_000,
    ...overrides,
  });

  it('ok/returns the socket with the verified peer ID and the ALPN protocol', async () => {
    const connection = await connectPeer(options({ accepts: (id) => id.toString() === peerId }));
    expect(connection.peerIdString).toBe(peerId);
    expect(connection.protocol).toBe('h2');
    expect(connection.socket.authorized).toBe(true);
    connection.socket.destroy();
  });

  it('fail/an ID the caller does not accept → phase identity, MESHAUTH_ERR_PEER_IDENTITY as the cause', async () => {
    const error = await connectPeer(options({ accepts: () => false })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PeerConnectError);
    expect((error as PeerConnectError).phase).toBe('identity');
    expect(((error as Error).cause as { code?: string }).code).toBe('MESHAUTH_ERR_PEER_IDENTITY');
    expect(peerConnectFailureReason('identity', (error as Error).cause)).toBe('peer_id_mismatch');
  });

  it('fail/nothing listening → phase connect (ECONNREFUSED)', async () => {
    const closed = createTcpServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const freePort = (closed.address() as { port: number }).port;
    await new Promise((resolve) => closed.close(resolve));
    const error = (await connectPeer(options({ port: freePort })).catch((e: unknown) => e)) as PeerConnectError;
    expect(error).toBeInstanceOf(PeerConnectError);
    expect(error.phase).toBe('connect');
    expect(error.code).toBe('ECONNREFUSED');
    expect(peerConnectFailureReason(error.phase, error.cause), 'not a handshake failure').toBeUndefined();
  });

  it('fail/a peer that never completes the handshake → phase timeout', async () => {
    const error = (await connectPeer(options({ port: silentPort, timeoutMs: 200 })).catch(
      (e: unknown) => e,
    )) as PeerConnectError;
    expect(error).toBeInstanceOf(PeerConnectError);
    expect(error.phase).toBe('timeout');
    expect(peerConnectFailureReason(error.phase, error.cause)).toBeUndefined();
  });

  it('fail/a server whose chain the bundle does not anchor → phase connect, never an accepted ID', async () => {
    const other = await TestCa.create();
    const stranger = await other.issue({ id: peerId });
    const foreign = createTlsServer({ cert: stranger.chainPem, key: stranger.keyPem, ALPNProtocols: ['h2'] });
    foreign.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => foreign.listen(0, '127.0.0.1', resolve));
    try {
      const error = (await connectPeer(
        options({ port: (foreign.address() as { port: number }).port, accepts: () => true }),
      ).catch((e: unknown) => e)) as PeerConnectError;
      expect(error).toBeInstanceOf(PeerConnectError);
      expect(error.phase).toBe('connect');
      expect(peerConnectFailureReason(error.phase, error.cause)).toBe('unknown_ca');
    } finally {
      foreign.close();
    }
  });
});
