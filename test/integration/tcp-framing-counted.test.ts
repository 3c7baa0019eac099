// A meshauth-tcp/2 tunnel reset because its peer broke the framing (a frame over 16 MiB, data after the end frame)
// was counted nowhere and logged only at debug, found by an outside test (2026-12-03): the app saw the reset
// (tcp-framed-peer-edges pins that), but no metric or warn line told the operator a peer sent input the tunnel
// refused. Now meshauth_connections_rejected_total{direction="inbound",reason="tcp_framing"} and one warn line.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TCP_ALPN } from '../../src/sidecar/tcp/index.js';
import { END_FRAME, frameHeader, MAX_FRAME_BYTES } from '../../src/sidecar/tcp/tcp-framing.js';
import type { Metrics } from '../../src/telemetry/index.js';
import { clientSecureContext } from '../../src/tls/index.js';
import { logLines } from '../helpers/log-lines.js';
import { startTcpApp, startTcpTunnelPair } from '../helpers/tcp-tunnel-pair.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

let ca: TestCa;
const teardown: (() => Promise<void> | void)[] = [];
beforeAll(async () => {
  ca = await TestCa.create();
});
afterEach(async () => {
  for (const fn of teardown.splice(0).reverse()) await fn();
});

const frame = (text: string) => Buffer.concat([frameHeader(text.length), Buffer.from(text)]);

async function framingRejections(metrics: Metrics): Promise<number> {
  const values = (await metrics.connectionsRejected.get()).values;
  return values.find((v) => v.labels.direction === 'inbound' && v.labels.reason === 'tcp_framing')?.value ?? 0;
}

describe('meshauth-tcp/2: a peer that breaks the framing is counted and logged once', () => {
  it.each([
    ['fail/a frame over 16 MiB', Buffer.concat([frame('abc'), frameHeader(MAX_FRAME_BYTES + 1)])],
    ['fail/data after the end frame', Buffer.concat([frame('abc'), END_FRAME, frame('x')])],
  ])('%s → connections_rejected{reason="tcp_framing"} +1, one warn line', async (_name, bytes) => {
    let appReset = false;
    const app = await startTcpApp((socket: Socket) => {
      socket.on('error', () => {
        appReset = true;
      });
    });
    teardown.push(() => app.close());
    const log = logLines('tcp');
    const pair = await startTcpTunnelPair(ca, { appPort: app.port, logger: log.logger });
    teardown.push(() => pair.close());
    const tcp = netConnect({ host: '127.0.0.1', port: pair.serverPort, allowHalfOpen: true });
    tcp.on('error', () => undefined);
    const mesh = tlsConnect({
      socket: tcp,
      secureContext: clientSecureContext({ tls12: false }, { svid: pair.clientSvid.svid, bundle: ca.bundle }),
      ALPNProtocols: [TCP_ALPN],
      checkServerIdentity: () => undefined,
    });
    mesh.on('error', () => undefined);
    teardown.push(() => void mesh.destroy());
    await new Promise<void>((resolve) => mesh.once('secureConnect', () => resolve()));
    mesh.write(bytes);
    await waitFor('the app sees the reset', () => appReset, 3_000);
    await waitFor('the tunnel counted', async () => (await framingRejections(pair.serverMetrics)) === 1, 3_000);
    const warns = log.lines.filter((line) => line.level === 'warn');
    expect(warns).toHaveLength(1);
    // The line names the peer that broke the framing (it holds a valid SVID: the operator must know which
    // workload) and what it sent; it named neither, found by an outside test (2026-12-03).
    expect(warns[0]).toMatchObject({
      direction: 'inbound',
      protocol: 'tcp',
      reason: 'tcp_framing',
      peer: pair.clientSvid.id,
      error: expect.stringMatching(/frame of|after the end/),
    });
  });
});
