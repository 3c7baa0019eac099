// Raw HTTP/1.1 bytes over mTLS, for hostile-input tests that must not go through a well-behaved client library
// (security.md §4: "write bytes, read bytes").
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer, connect as tlsConnect } from 'node:tls';
import type { TestSvid } from './test-ca.js';

/** Writes raw bytes over mTLS (HTTP/1.1 by ALPN) and resolves with the reply read until close. */
export function rawTlsExchange(port: number, svid: TestSvid, caPem: string, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = tlsConnect(
      {
        host: '127.0.0.1',
        port,
        cert: svid.chainPem,
        key: svid.keyPem,
        ca: [caPem],
        checkServerIdentity: () => undefined, // SVIDs carry no DNS name; the chain is verified against the bundle
        ALPNProtocols: ['http/1.1'],
      },
      () => socket.write(bytes),
    );
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
    });
    socket.on('close', () => resolve(text));
    socket.on('error', (e) => (text === '' ? reject(e) : resolve(text)));
    socket.setTimeout(5_000, () => socket.destroy());
  });
}

/**
 * Whether this Node's TLS server reports the certificates a client sent above its leaf. Node 20 does; Node 24 does
 * not (getPeerCertificate(true) and getPeerX509Certificate() give the leaf alone on the server side), so checks of a
 * peer's intermediates can only run where this is true.
 */
export async function tlsServerSeesClientIssuers(server: TestSvid, client: TestSvid, caPem: string): Promise<boolean> {
  const listener = createTlsServer({ cert: server.chainPem, key: server.keyPem, ca: [caPem], requestCert: true });
  const seen = new Promise<boolean>((resolve) => {
    listener.once('secureConnection', (socket) => {
      const issuer = socket.getPeerCertificate(true).issuerCertificate;
      resolve(issuer !== undefined && issuer.raw !== undefined);
      socket.destroy();
    });
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const port = (listener.address() as AddressInfo).port;
  const socket = tlsConnect({
    host: '127.0.0.1',
    port,
    cert: client.chainPem,
    key: client.keyPem,
    ca: [caPem],
    checkServerIdentity: () => undefined, // SVIDs carry no DNS name; the chain is verified against the bundle
  });
  socket.on('error', () => undefined);
  try {
    return await seen;
  } finally {
    socket.destroy();
    await new Promise((resolve) => listener.close(resolve));
  }
}
