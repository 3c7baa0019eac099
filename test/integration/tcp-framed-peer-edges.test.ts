// Outside review (2026-12-02) probes: a hand-made /2 client sidecar sending odd frame sequences; the app must see a
// reset for each.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TCP_ALPN } from '../../src/sidecar/tcp/index.js';
import { END_FRAME, frameHeader } from '../../src/sidecar/tcp/tcp-framing.js';
import { clientSecureContext } from '../../src/tls/index.js';
import { until } from '../helpers/tcp-client.js';
import { startTcpApp, startTcpTunnelPair } from '../helpers/tcp-tunnel-pair.js';
import { TestCa } from '../helpers/test-ca.js';

let ca: TestCa;
const teardown: (() => Promise<void> | void)[] = [];
beforeAll(async () => {
  ca = await TestCa.create();
});
afterEach(async () => {
  for (const fn of teardown.splice(0).reverse()) await fn();
});

const frame = (t: string) => Buffer.concat([frameHeader(t.length), Buffer.from(t)]);

describe('meshauth-tcp/2: odd peers', () => {
  it.each([
    ['fail/partial header, then close_notify + FIN', Buffer.concat([frame('abc'), Buffer.from([0, 0])]), 'end'],
    ['fail/partial header, then bare TCP FIN', Buffer.concat([frame('abc'), Buffer.from([0, 0])]), 'tcp'],
    ['fail/two end frames', Buffer.concat([frame('abc'), END_FRAME, END_FRAME]), 'end-now'],
    ['fail/data after the end frame', Buffer.concat([frame('abc'), END_FRAME, frame('x')]), 'end-now'],
    ['fail/a frame over 16 MiB', Buffer.concat([frame('abc'), frameHeader(16 * 1024 * 1024 + 1)]), 'none'],
  ])('%s: the app sees a reset', async (_name, bytes, how) => {
    let got = '';
    let appEnded = false;
    let appError: (Error & { code?: string }) | undefined;
    const app = await startTcpApp((socket: Socket) => {
      socket.on('data', (d: Buffer) => {
        got += d.toString();
      });
      socket.on('end', () => {
        appEnded = true;
      });
      socket.on('error', (e: Error) => {
        appError = e;
      });
    });
    teardown.push(() => app.close());
    const p = await startTcpTunnelPair(ca, { appPort: app.port });
    teardown.push(() => p.close());
    const tcp = netConnect({ host: '127.0.0.1', port: p.serverPort, allowHalfOpen: true });
    tcp.on('error', () => undefined);
    const mesh = tlsConnect({
      socket: tcp,
      secureContext: clientSecureContext({ tls12: false }, { svid: p.clientSvid.svid, bundle: ca.bundle }),
      ALPNProtocols: [TCP_ALPN],
      checkServerIdentity: () => undefined,
    });
    mesh.allowHalfOpen = true;
    mesh.on('error', () => undefined);
    await new Promise<void>((resolve) => mesh.once('secureConnect', () => resolve()));
    teardown.push(() => void mesh.destroy());
    mesh.write(bytes);
    if (how !== 'none' && how !== 'end-now') await until('app got abc', () => got === 'abc');
    if (how === 'end' || how === 'end-now') mesh.end();
    if (how === 'tcp') tcp.end();
    await until('app sees the cut', () => appEnded || appError !== undefined, 3_000);
    // A framing error in the same read as 'abc' resets the app before the corked 'abc' is written: acceptable.
    expect({ appError: appError?.code, appEnded }).toEqual({ appError: 'ECONNRESET', appEnded: false });
  });
});
