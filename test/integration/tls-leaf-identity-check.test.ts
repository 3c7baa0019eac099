// answerIdentityCheckWithLeaf over a real TLS handshake (leaf + intermediate from a real root): the server identity
// check receives the leaf's record without its issuer chain (Node's record of the whole chain is not built), the
// handshake still fails on a certificate the check refuses, and afterwards the socket's own getPeerCertificate
// answers again with the whole chain.
import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import {
  connect,
  createServer,
  type DetailedPeerCertificate,
  type PeerCertificate,
  type Server,
  type TLSSocket,
} from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerIdentityCheckWithLeaf } from '../../src/tls/index.js';
import { TestCa } from '../helpers/test-ca.js';

let ca: TestCa;
let server: Server;
let port: number;
let leafDer: Buffer;

beforeAll(async () => {
  ca = await TestCa.create();
  const serving = await ca.issue({ id: ca.idFor('/server') });
  leafDer = new X509Certificate(serving.chainPem).raw;
  // The server holds each connection until the client closes it, so the client can still ask about its peer.
  server = createServer({ cert: serving.chainPem, key: serving.keyPem }, (socket) => socket.on('error', () => {}));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

/** Connects with the given identity check; resolves with the socket once secure, or with the handshake error. */
function handshake(
  check: (host: string, cert: PeerCertificate) => Error | undefined,
  leafOnly: boolean,
): Promise<{ socket?: TLSSocket; error?: Error }> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, ca: ca.bundlePem, checkServerIdentity: check });
    if (leafOnly) answerIdentityCheckWithLeaf(socket);
    socket.once('secureConnect', () => resolve({ socket }));
    socket.once('error', (error) => resolve({ error }));
  });
}

describe('answerIdentityCheckWithLeaf', () => {
  it('hands the check the leaf alone, then the socket answers with the whole chain again', async () => {
    const seen: DetailedPeerCertificate[] = [];
    const { socket } = await handshake((_host, cert) => {
      seen.push(cert as DetailedPeerCertificate);
      return undefined;
    }, true);
    expect(seen).toHaveLength(1);
    expect(Buffer.compare(seen[0]?.raw as Buffer, leafDer)).toBe(0);
    expect(seen[0]?.fingerprint256).toBe(new X509Certificate(leafDer).fingerprint256);
    expect(seen[0]?.issuerCertificate).toBeUndefined();
    expect(Object.hasOwn(socket as TLSSocket, 'getPeerCertificate')).toBe(false);
    const full = socket?.getPeerCertificate(true);
    expect(full?.fingerprint256).toBe(seen[0]?.fingerprint256);
    expect(full?.issuerCertificate?.raw.equals(Buffer.from(ca.intermediate.rawData))).toBe(true);
    socket?.destroy();
  });

  it('without it, the check gets Node’s record of the chain (the cost this avoids)', async () => {
    const seen: DetailedPeerCertificate[] = [];
    const { socket } = await handshake((_host, cert) => {
      seen.push(cert as DetailedPeerCertificate);
      return undefined;
    }, false);
    expect(seen[0]?.issuerCertificate?.raw.equals(Buffer.from(ca.intermediate.rawData))).toBe(true);
    socket?.destroy();
  });

  it('a refusal from the check still fails the handshake', async () => {
    const refused = Object.assign(new Error('not the expected server'), { code: 'ERR_TEST_IDENTITY' });
    const { socket, error } = await handshake(() => refused, true);
    expect(socket).toBeUndefined();
    expect(error).toBe(refused);
  });
});
