// A TCP connection that closes before its first byte (a load balancer's TCP health check, a port scan) began no TLS
// handshake: it is not a meshauth_tls_handshake_failures_total, on the mTLS inbound nor on the external listener
// (the CA's door never counted one either). Found by an SRE review: each such connect counted reason="other" and
// wrote a "TLS handshake refused" line. What is a refused handshake stays counted: a ClientHello cut short, plain
// text, and a client that sends nothing until the handshake timeout closes it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import type { Metrics } from '../../src/telemetry/index.js';
import {
  connectionsOpen,
  type InboundServer,
  startInboundServer,
  startTestSidecar,
  type TestSidecar,
} from '../helpers/sidecar-harness.js';
import { waitFor } from '../helpers/wait.js';

const HANDSHAKE_TIMEOUT_MS = 400;
/** The first bytes of a TLS ClientHello record, the rest never sent. */
const PARTIAL_HELLO = Buffer.from('160301020001', 'hex');

async function failures(metrics: Metrics, direction: string): Promise<Record<string, number>> {
  const byReason: Record<string, number> = {};
  for (const v of (await metrics.tlsHandshakeFailures.get()).values) {
    if (v.labels.direction === direction) byReason[String(v.labels.reason)] = v.value;
  }
  return byReason;
}

/** Connects, lets `act` do something (or nothing) with the socket, and resolves when the connection closed. */
function connection(port: number, act: (socket: Socket) => void): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => act(socket));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
  });
}

/** The cases of one listener; `port` and `metrics` are read when the tests run. */
function cases(direction: string, listener: () => { port: number; metrics: Metrics }) {
  it(`ok/${direction}: connections closed before their first byte are no handshake failure`, async () => {
    const { port, metrics } = listener();
    const before = await failures(metrics, direction);
    for (let i = 0; i < 5; i++) {
      await connection(port, (s) => s.end()); // FIN without a byte: a TCP health check
      await connection(port, (s) => s.resetAndDestroy()); // RST without a byte: a port scan
    }
    await waitFor('the listener to close them', async () => (await connectionsOpen(metrics, direction)) === 0);
    // A ClientHello cut short is a failed handshake: counted once it is, after the ten above.
    await connection(port, (s) => s.end(PARTIAL_HELLO));
    await waitFor(
      'the cut ClientHello counted',
      async () => ((await failures(metrics, direction)).other ?? 0) >= (before.other ?? 0) + 1,
    );
    expect(await failures(metrics, direction)).toEqual({ ...before, other: (before.other ?? 0) + 1 });
  });

  it(`fail/${direction}: plain text and a silent client held to the handshake timeout stay counted`, async () => {
    const { port, metrics } = listener();
    const before = await failures(metrics, direction);
    await connection(port, (s) => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await connection(port, () => undefined); // sends nothing: the listener closes it at the timeout
    const expected = {
      ...before,
      not_tls: (before.not_tls ?? 0) + 1,
      handshake_timeout: (before.handshake_timeout ?? 0) + 1,
    };
    await waitFor('both counted', async () => {
      const now = await failures(metrics, direction);
      return now.not_tls === expected.not_tls && now.handshake_timeout === expected.handshake_timeout;
    });
    expect(await failures(metrics, direction)).toEqual(expected);
  });
}

describe('the mTLS inbound', () => {
  let inbound: InboundServer;
  beforeAll(async () => {
    inbound = await startInboundServer({ inboundLimits: { handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS } });
  });
  afterAll(async () => {
    await inbound?.close();
  });
  cases('inbound', () => ({ port: inbound.sidecar.sidecar.inboundPort, metrics: inbound.sidecar.metrics }));
});

describe('the external listener', () => {
  let inbound: InboundServer;
  let external: TestSidecar;
  let dir: string;
  beforeAll(async () => {
    // The CA, app and certificates of the inbound set-up; a second sidecar with an external listener in front of it.
    inbound = await startInboundServer();
    dir = mkdtempSync(join(tmpdir(), 'meshauth-closed-before-hello-'));
    const server = await inbound.ca.issue({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    writeFileSync(join(dir, 'ext.crt'), server.chainPem);
    writeFileSync(join(dir, 'ext.key'), server.keyPem, { mode: 0o600 });
    const config = sidecarConfigFromObject(
      {
        trustDomain: 'example.org',
        ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent', token: '/nonexistent' },
        inbound: {
          listen: '127.0.0.1:0',
          app: `127.0.0.1:${inbound.app.port}`,
          // Never fetched here: no request gets past TLS.
          endUser: {
            issuers: [
              {
                issuer: 'https://idp.invalid',
                audiences: ['api'],
                algorithms: ['ES256'],
                jwksUri: 'https://127.0.0.1:1/jwks',
              },
            ],
          },
          external: { listen: '127.0.0.1:0', cert: join(dir, 'ext.crt'), key: join(dir, 'ext.key') },
        },
        outbound: { listen: '127.0.0.1:0', routes: {} },
        admin: { listen: '127.0.0.1:0' },
      },
      'closed-before-hello-test',
    );
    external = await startTestSidecar(inbound.ca, inbound.ca.idFor('/ns/edge/sa/api'), config, {
      inboundLimits: { handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS },
    });
  });
  afterAll(async () => {
    await external?.sidecar.close(0);
    await inbound?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });
  cases('external', () => ({ port: external.sidecar.externalPort ?? 0, metrics: external.metrics }));
});
