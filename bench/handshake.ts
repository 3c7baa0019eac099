// Handshake cost of a new mTLS connection (P-256, TLS 1.3): N sequential tls.connect with the client SVID to a
// Node TLS server that requires and verifies client certificates, both in this process, so the time per handshake
// is the CPU of both sides plus loopback. Sessions are not resumed (every handshake is a full one).
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createSecureContext, createServer, connect as tlsConnect } from 'node:tls';
import type { BenchPki } from './bench-pki.js';

export interface HandshakeBenchResult {
  readonly name: string;
  readonly handshakes: number;
  readonly msPerHandshake: number;
  readonly p99Ms: number;
  readonly handshakesPerSec: number;
}

export async function benchHandshake(options: { quick: boolean; pki: BenchPki }): Promise<HandshakeBenchResult> {
  const { pki } = options;
  const server = createServer({
    cert: pki.server.certChainPem,
    key: pki.server.privateKeyPem,
    ca: [pki.rootPem],
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
  });
  server.on('secureConnection', (socket) => socket.end('ok'));
  server.on('tlsClientError', () => undefined);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const total = options.quick ? 200 : 2_000;
  const warmup = 50;
  const samples: number[] = [];
  // One client context, as a sidecar builds it once per SVID rotation; each connection is still a full handshake.
  const secureContext = createSecureContext({
    cert: pki.client.certChainPem,
    key: pki.client.privateKeyPem,
    ca: [pki.rootPem],
    minVersion: 'TLSv1.3',
  });
  try {
    for (let i = 0; i < total + warmup; i++) {
      const start = process.hrtime.bigint();
      const socket = tlsConnect({
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        secureContext,
      });
      // Wait for the server's close, not 'secureConnect': in TLS 1.3 the client finishes before the server has
      // verified the client certificate, and that verification is part of the cost.
      socket.resume();
      await once(socket, 'end');
      if (i >= warmup) samples.push(Number(process.hrtime.bigint() - start) / 1e6);
      socket.destroy();
    }
  } finally {
    server.close();
  }
  samples.sort((a, b) => a - b);
  const totalMs = samples.reduce((sum, ms) => sum + ms, 0);
  const median = samples[Math.floor(samples.length / 2)] ?? Number.NaN;
  return {
    name: 'mTLS handshake (P-256, TLS 1.3, new connection)',
    handshakes: samples.length,
    msPerHandshake: Math.round(median * 1000) / 1000,
    p99Ms: Math.round((samples[Math.floor(samples.length * 0.99)] ?? Number.NaN) * 1000) / 1000,
    handshakesPerSec: Math.round((samples.length * 1000) / totalMs),
  };
}
