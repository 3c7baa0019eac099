// Raw HTTP/1.1 bytes over mTLS, for hostile-input tests that must not go through a well-behaved client library
// (the bytes written are the bytes sent).
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import type { TestSvid } from './test-ca.js';

/** An mTLS connection (HTTP/1.1 by ALPN) to 127.0.0.1:`port` with `svid` as the client certificate, connecting. */
export function rawTlsSocket(port: number, svid: TestSvid, caPem: string): TLSSocket {
  return tlsConnect({
    host: '127.0.0.1',
    port,
    cert: svid.chainPem,
    key: svid.keyPem,
    ca: [caPem],
    checkServerIdentity: () => undefined, // SVIDs carry no DNS name; the chain is verified against the bundle
    ALPNProtocols: ['http/1.1'],
  });
}

/** Writes raw bytes over mTLS (HTTP/1.1 by ALPN) and resolves with the reply read until close. */
export function rawTlsExchange(port: number, svid: TestSvid, caPem: string, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = rawTlsSocket(port, svid, caPem);
    socket.once('secureConnect', () => socket.write(bytes));
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
    });
    socket.on('close', () => resolve(text));
    socket.on('error', (e) => (text === '' ? reject(e) : resolve(text)));
    socket.setTimeout(5_000, () => socket.destroy());
  });
}
