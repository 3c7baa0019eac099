// acceptMtls (src/platform/tls-accept.ts) starts the inbound's handshakes in place of tls.Server. Pinned here on real
// sockets: what it reports for a verified client, a client of another CA, a client without a certificate and a silent
// one, the Node internals it relies on ('secure', '_tlsError' until control is released, the handshake timeout,
// `_handle.verifyError()`), and that an error after the handshake is not reported as a handshake failure.
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { type DetailedPeerCertificate, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acceptMtls, mtlsSecureContext } from '../../src/platform/index.js';
import { mtlsServerOptions, tlsClientErrorReason } from '../../src/tls/index.js';
import { eventually } from '../helpers/raw-app.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';

type Outcome =
  | { readonly kind: 'secure'; readonly socket: TLSSocket; readonly peer: DetailedPeerCertificate }
  | { readonly kind: 'failure'; readonly error: Error & { code?: string }; readonly socket: TLSSocket };

describe('acceptMtls: the inbound handshake without tls.Server', () => {
  let ca: TestCa;
  let stranger: TestCa;
  let client: TestSvid;
  let server: Server;
  let port: number;
  const outcomes: Outcome[] = [];
  const raws: Socket[] = [];

  beforeAll(async () => {
    ca = await TestCa.create();
    stranger = await TestCa.create();
    client = await ca.issue({ id: ca.idFor('/ns/a/sa/client') });
    const serverSvid = await ca.issue({ id: ca.idFor('/ns/a/sa/server') });
    const options = mtlsServerOptions({ tls12: false }, { svid: serverSvid.svid, bundle: ca.bundle });
    const secureContext = mtlsSecureContext(options);
    server = createServer((raw) => {
      raws.push(raw);
      acceptMtls(raw, {
        secureContext,
        handshakeTimeoutMs: 300,
        alpnProtocols: ['h2', 'http/1.1'],
        onSecure: (socket, peer) => outcomes.push({ kind: 'secure', socket, peer }),
        onFailure: (error, socket) => {
          outcomes.push({ kind: 'failure', error, socket });
          socket.destroy();
        },
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    for (const raw of raws) raw.destroy();
    await new Promise((resolve) => server?.close(resolve));
  });

  /** Connects with `svid` (none: no certificate), returns the next outcome the server reported. */
  async function handshake(svid: TestSvid | undefined): Promise<{ outcome: Outcome; client: TLSSocket }> {
    const before = outcomes.length;
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      ca: ca.bundlePem,
      servername: 'server.test',
      checkServerIdentity: () => undefined,
      ALPNProtocols: ['h2'],
      ...(svid === undefined ? {} : { cert: svid.chainPem, key: svid.keyPem }),
    });
    socket.on('error', () => undefined);
    expect(await eventually(() => outcomes.length > before, 5_000), 'the server reported the handshake').toBe(true);
    return { outcome: outcomes[before] as Outcome, client: socket };
  }

  it('ok/a client of the bundle: secure, authorized, ALPN chosen, control released, the chain read and handed on', async () => {
    const { outcome, client: socket } = await handshake(client);
    expect(outcome.kind).toBe('secure');
    const served = outcome.socket;
    expect(served.authorized).toBe(true);
    expect(served.alpnProtocol).toBe('h2');
    expect((served as unknown as { _controlReleased: boolean })._controlReleased).toBe(true);
    const chain = served.getPeerCertificate(true);
    expect(chain.raw.equals(Buffer.from(client.leaf.rawData))).toBe(true);
    // The chain acceptMtls read for its presence check, handed on so the inbound does not read it again.
    if (outcome.kind !== 'secure') return;
    expect(outcome.peer.raw.equals(chain.raw)).toBe(true);
    expect(outcome.peer.issuerCertificate.raw.equals(chain.issuerCertificate.raw)).toBe(true);
    // An error on the socket after the handshake is the connection's, not a handshake failure.
    const count = outcomes.length;
    served.destroy(new Error('after the handshake'));
    socket.destroy();
    // A fixed wait for a negative (no event to wait on): a wrongly counted failure would come within it.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(outcomes.length).toBe(count);
  });

  it("fail/a client of another CA: refused after OpenSSL's verification, reported once as unknown_ca", async () => {
    const other = await stranger.issue({ id: stranger.idFor('/ns/a/sa/client') });
    const before = outcomes.length;
    const { outcome, client: socket } = await handshake(other);
    expect(outcome.kind).toBe('failure');
    if (outcome.kind !== 'failure') return;
    expect(outcome.error.code).toBe('ECONNRESET');
    expect(typeof outcome.socket.authorizationError).toBe('string');
    expect(tlsClientErrorReason(outcome.error, outcome.socket.authorizationError)).toBe('unknown_ca');
    socket.destroy();
    // A fixed wait for a negative: a second outcome for the same connection would come within it.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(outcomes.length - before).toBe(1);
  });

  it('fail/no client certificate: the handshake fails (no_client_cert)', async () => {
    const { outcome, client: socket } = await handshake(undefined);
    expect(outcome.kind).toBe('failure');
    if (outcome.kind !== 'failure') return;
    expect(tlsClientErrorReason(outcome.error, outcome.socket.authorizationError)).toBe('no_client_cert');
    socket.destroy();
  });

  it('fail/a silent client: ERR_TLS_HANDSHAKE_TIMEOUT after handshakeTimeoutMs', async () => {
    const before = outcomes.length;
    const silent = connect({ host: '127.0.0.1', port });
    silent.on('error', () => undefined);
    expect(await eventually(() => outcomes.length > before, 5_000)).toBe(true);
    const outcome = outcomes[before] as Outcome;
    expect(outcome.kind === 'failure' ? outcome.error.code : outcome.kind).toBe('ERR_TLS_HANDSHAKE_TIMEOUT');
    silent.destroy();
  });
});
