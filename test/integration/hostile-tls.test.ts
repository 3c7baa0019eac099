// Hostile TLS on the mTLS listener with `inbound.tls12: true`, driven by Node's own TLS client so each case runs
// without external tools: client-initiated renegotiation is refused and never serves another request, CBC-only and TLS
// ≤ 1.1 clients are refused at the handshake, each counted.
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InboundServer, startInboundServer, type TestApp, type TestSidecar } from '../helpers/sidecar-harness.js';
import type { TestCa, TestSvid } from '../helpers/test-ca.js';

describe('hostile TLS on the inbound listener (tls12: true)', () => {
  let ca: TestCa;
  let app: TestApp;
  let sidecar: TestSidecar;
  let client: TestSvid;
  let inbound: InboundServer;

  beforeAll(async () => {
    inbound = await startInboundServer({ namespace: 'a', tls12: true });
    ({ ca, app, sidecar, client } = inbound);
  });
  afterAll(async () => {
    await inbound?.close();
  });

  const connectOptions = (extra: ConnectionOptions): ConnectionOptions => ({
    host: '127.0.0.1',
    port: sidecar.sidecar.inboundPort,
    cert: client.chainPem,
    key: client.keyPem,
    ca: [ca.bundlePem],
    checkServerIdentity: () => undefined, // the server is an SVID without DNS names; the chain is still verified
    ALPNProtocols: ['http/1.1'],
    ...extra,
  });

  /** Resolves with the negotiated protocol, or the error code when the handshake fails. */
  const handshake = (extra: ConnectionOptions): Promise<string> =>
    new Promise((resolve) => {
      const socket = tlsConnect(connectOptions(extra));
      socket.setTimeout(5_000, () => socket.destroy(new Error('timeout')));
      socket.once('secureConnect', () => {
        resolve(`connected ${socket.getProtocol()}`);
        socket.destroy();
      });
      socket.once('error', (error: Error & { code?: string }) => resolve(error.code ?? error.message));
    });

  const handshakeFailures = async (reason?: string): Promise<number> => {
    const { values } = await sidecar.metrics.tlsHandshakeFailures.get();
    return values
      .filter((v) => v.labels.direction === 'inbound' && (reason === undefined || v.labels.reason === reason))
      .reduce((sum, v) => sum + v.value, 0);
  };

  const handshakes: Array<[string, ConnectionOptions, RegExp, string | undefined]> = [
    [
      'ok/TLS 1.2 with an ECDHE + AEAD suite',
      { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' },
      /^connected TLSv1\.2$/,
      undefined,
    ],
    [
      'fail/only CBC suites offered (T03)',
      { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:AES128-SHA:AES256-SHA256' },
      /HANDSHAKE_FAILURE/,
      'no_shared_cipher',
    ],
    [
      'fail/TLS 1.1 at most (T01)',
      { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' },
      /PROTOCOL_VERSION/,
      'protocol_version',
    ],
    [
      'fail/TLS 1.0 only (T01)',
      { minVersion: 'TLSv1', maxVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' },
      /PROTOCOL_VERSION/,
      'protocol_version',
    ],
  ];
  it.each(handshakes)('%s', async (name, options, expected, reason) => {
    const seen = app.seen.length;
    const before = await handshakeFailures(reason);
    expect(await handshake(options)).toMatch(expected);
    expect(app.seen.length).toBe(seen);
    if (name.startsWith('fail/')) {
      // The refusal is counted under its reason.
      await expect.poll(() => handshakeFailures(reason), { timeout: 2_000, interval: 20 }).toBe(before + 1);
    } else {
      expect(await handshakeFailures()).toBe(before);
    }
  });

  it('fail/client-initiated renegotiation is refused and the connection serves nothing more (T04)', async () => {
    const socket: TLSSocket = tlsConnect(connectOptions({ maxVersion: 'TLSv1.2' }));
    let reply = '';
    let socketError = '';
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (d: Buffer) => {
      reply += d.toString('latin1');
    });
    socket.on('error', (error: Error & { code?: string }) => {
      socketError = `${error.code ?? ''} ${error.message}`;
    });
    socket.setTimeout(5_000, () => socket.destroy());
    await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
    expect(socket.getProtocol()).toBe('TLSv1.2');

    socket.write('GET /before HTTP/1.1\r\nHost: b\r\n\r\n');
    await expect.poll(() => reply, { timeout: 2_000, interval: 10 }).toMatch(/^HTTP\/1\.1 200/);

    // The callback only runs if the renegotiation completes; the server's no_renegotiation alert ends it instead.
    let renegotiated = false;
    socket.renegotiate({ rejectUnauthorized: true }, (error) => {
      renegotiated = error === null || error === undefined;
    });
    socket.write('GET /after HTTP/1.1\r\nHost: b\r\n\r\n');
    await closed;
    expect(renegotiated).toBe(false);
    expect(socketError).toMatch(/no renegotiation/i);
    expect(app.seen.map((s) => s.url)).not.toContain('/after');
    // No metric of its own: OpenSSL refuses inside the record layer (the client's answering alert, when it arrives
    // before the reset, is counted as a 400). The listener keeps serving new connections.
    expect(await handshake({ maxVersion: 'TLSv1.2' })).toBe('connected TLSv1.2');
  });
});
