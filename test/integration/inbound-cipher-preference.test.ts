// The inbound chooses the mesh profile's cipher suite whatever order the client offers them in, as tls.Server did
// before acceptMtls (its contexts are built with honorCipherOrder true unless told otherwise): a client that puts
// ChaCha20 first still gets TLS_AES_128_GCM_SHA256 on TLS 1.3 and ECDHE-ECDSA-AES128-GCM-SHA256 on TLS 1.2, before
// and after a rotation (whose context is built apart from the first).
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InboundServer, startInboundServer, type TestSidecar } from '../helpers/sidecar-harness.js';
import type { TestCa, TestSvid } from '../helpers/test-ca.js';

const CHACHA_FIRST: Array<[string, ConnectionOptions, string]> = [
  [
    'TLS 1.3',
    { ciphers: 'TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256' },
    'TLS_AES_128_GCM_SHA256',
  ],
  [
    'TLS 1.2',
    {
      maxVersion: 'TLSv1.2',
      ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256',
    },
    'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256',
  ],
];

describe("inbound: the server's cipher order wins", () => {
  let ca: TestCa;
  let sidecar: TestSidecar;
  let client: TestSvid;
  let inbound: InboundServer;

  beforeAll(async () => {
    inbound = await startInboundServer({ tls12: true });
    ({ ca, sidecar, client } = inbound);
  });
  afterAll(async () => {
    await inbound?.close();
  });

  /** The standard name of the suite the inbound chose for a client offering `options`. */
  function negotiated(options: ConnectionOptions): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({
        host: '127.0.0.1',
        port: sidecar.sidecar.inboundPort,
        ca: ca.bundlePem,
        cert: client.chainPem,
        key: client.keyPem,
        ALPNProtocols: ['http/1.1'],
        checkServerIdentity: () => undefined,
        ...options,
      });
      socket.once('error', reject);
      socket.once('secureConnect', () => {
        resolve(socket.getCipher().standardName);
        socket.destroy();
      });
    });
  }

  for (const [name, options, expected] of CHACHA_FIRST) {
    it(`ok/${name}, ChaCha20 offered first: ${expected}, before and after a rotation`, async () => {
      expect(await negotiated(options)).toBe(expected);
      const next = await ca.issue({ id: ca.idFor('/ns/shop/sa/server') });
      sidecar.holder.set({ svid: next.svid, bundle: ca.bundle });
      expect(await negotiated(options)).toBe(expected);
    });
  }
});
