// Found by an outside security test (2026-12-02): a TLS connection between sidecars that ends with a TCP FIN but no
// TLS close_notify (an on-path FIN injection, a peer sidecar killed mid-stream, or a sidecar destroying the socket
// at its drain deadline / idle / root-removal cut) is not a clean end of the tunnelled stream: it must reach the app
// as a reset, never as a clean FIN (RFC 8446 §6.1: a close without close_notify is a truncation). Node does not say
// whether a close_notify came, so meshauth-tcp/2 frames the stream and ends it with an end frame; a peer that offers
// only meshauth-tcp/1 still gets the raw tunnel.

import type { AddressInfo } from 'node:net';
import { connect as netConnect, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CredentialHolder } from '../../src/agent/credential-holder.js';
import { SpiffeId } from '../../src/identity/index.js';
import { TCP_ALPN, TCP_ALPN_RAW, TcpOutboundListeners } from '../../src/sidecar/tcp/index.js';
import { END_FRAME, frameHeader } from '../../src/sidecar/tcp/tcp-framing.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { clientSecureContext, mtlsServerOptions } from '../../src/tls/index.js';
import { rawClient, until } from '../helpers/tcp-client.js';
import { startTcpApp, startTcpTunnelPair, type TcpApp } from '../helpers/tcp-tunnel-pair.js';
import { TestCa } from '../helpers/test-ca.js';

/** One meshauth-tcp/2 frame carrying `text`. */
const frame = (text: string) => Buffer.concat([frameHeader(Buffer.byteLength(text)), Buffer.from(text)]);

let ca: TestCa;
const teardown: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  ca = await TestCa.create();
});
afterEach(async () => {
  for (const fn of teardown.splice(0).reverse()) await fn();
});

describe('tunnel truncation without close_notify', () => {
  it('fail/a peer whose TLS connection ends with a bare TCP FIN (no close_notify) mid-stream: the app sees a reset, not a clean end', async () => {
    let appEnded = false;
    let appError: (Error & { code?: string }) | undefined;
    let got = '';
    const app: TcpApp = await startTcpApp((socket: Socket) => {
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
    // Act as the client sidecar: mTLS with its SVID and ALPN meshauth-tcp/2, straight to the server side.
    const tcp = netConnect({ host: '127.0.0.1', port: p.serverPort, allowHalfOpen: true });
    tcp.on('error', () => undefined);
    const context = clientSecureContext({ tls12: false }, { svid: p.clientSvid.svid, bundle: ca.bundle });
    const mesh = tlsConnect({
      socket: tcp,
      secureContext: context,
      ALPNProtocols: [TCP_ALPN],
      checkServerIdentity: () => undefined,
    });
    mesh.on('error', () => undefined);
    await new Promise<void>((resolve) => mesh.once('secureConnect', () => resolve()));
    teardown.push(() => void mesh.destroy());
    mesh.write(frame('SET k partial-valu'));
    await until('app got the bytes', () => got === 'SET k partial-valu');
    // The stream is cut here: a TCP FIN without a TLS close_notify (what a killed process or an injected FIN gives).
    tcp.end();
    await until('app sees the cut', () => appEnded || appError !== undefined, 3_000);
    // Before meshauth-tcp/2: appEnded === true, appError undefined (a clean FIN: the truncated stream looked complete).
    expect(appError?.code).toBe('ECONNRESET');
    expect(appEnded).toBe(false);
  });

  it("fail/the server sidecar's TLS connection ends with a bare TCP FIN mid-answer: the client app sees a reset, not a clean end", async () => {
    // A fake server-side sidecar with a real SVID: answers part of a reply, then its TCP connection ends without
    // close_notify (a sidecar killed mid-reply: the kernel sends FIN).
    const serverSvid = await ca.issue({ id: ca.idFor('/ns/data/sa/db') });
    const clientSvid = await ca.issue({ id: ca.idFor('/ns/shop/sa/client') });
    const server = createTlsServer({
      ...mtlsServerOptions({ tls12: false }, { svid: serverSvid.svid, bundle: ca.bundle }),
      ALPNProtocols: [TCP_ALPN],
    });
    const rawSockets: Socket[] = [];
    server.on('connection', (s: Socket) => rawSockets.push(s));
    server.on('secureConnection', (s: TLSSocket) => {
      s.on('error', () => undefined);
      s.write(frame('+partial-rep'));
      setTimeout(() => rawSockets.at(-1)?.end(), 100); // FIN under TLS, no close_notify
    });
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    teardown.push(
      () =>
        new Promise<void>((r) => {
          for (const s of rawSockets) s.destroy();
          server.close(() => r());
        }),
    );
    const outbound = new TcpOutboundListeners({
      routes: new Map([
        [
          'k',
          {
            listen: { host: '127.0.0.1', port: 0 },
            address: { host: '127.0.0.1', port: (server.address() as AddressInfo).port },
            ids: [SpiffeId.parse(serverSvid.id)],
          },
        ],
      ]),
      trustDomain: ca.trustDomain,
      holder: new CredentialHolder({ svid: clientSvid.svid, bundle: ca.bundle }),
      profile: { tls12: false },
      metrics: new Metrics(),
      logger: silentLogger(),
    });
    const ports = await outbound.listen();
    teardown.push(() => outbound.close(Date.now()));
    const client = await rawClient(ports.get('k') ?? 0);
    let ended = false;
    void client.ended.then(() => {
      ended = true;
    });
    const error = await client.closed.then((e) => e);
    expect(client.received().toString()).toBe('+partial-rep');
    // Before meshauth-tcp/2: a clean FIN (ended === true, no error).
    expect(error?.code).toBe('ECONNRESET');
    expect(ended).toBe(false);
  });
});

describe('a tunnel the sidecar cuts is a reset, never a clean end', () => {
  it('fail/drain deadline on the server side cuts a busy tunnel: both apps see a reset, not a clean FIN', async () => {
    let appEnded = false;
    let appError: (Error & { code?: string }) | undefined;
    const app: TcpApp = await startTcpApp((socket: Socket) => {
      socket.write('+partial-rep'); // mid-answer, never finished
      socket.resume();
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
    const client = await rawClient(p.port);
    let clientEnded = false;
    void client.ended.then(() => {
      clientEnded = true;
    });
    client.socket.write('GET k partial-reque');
    await until('partial answer', () => client.received().toString() === '+partial-rep');
    // Only the server side drains (SIGTERM) and reaches its deadline with the tunnel mid-exchange.
    await p.inbound.close(Date.now() + 50);
    const error = await client.closed;
    await until('app sees the cut', () => appEnded || appError !== undefined, 3_000);
    // Observed: the client gets a clean FIN (clientEnded, no error) and the app a clean FIN too.
    expect({ client: error?.code, clientEnded }).toEqual({ client: 'ECONNRESET', clientEnded: false });
    expect({ app: appError?.code, appEnded }).toEqual({ app: 'ECONNRESET', appEnded: false });
  });
});

describe('meshauth-tcp/2 ends and meshauth-tcp/1 peers', () => {
  it('ok/the end frame, then a FIN: the app sees a clean end of the stream, with every byte', async () => {
    let appEnded = false;
    let got = '';
    const app: TcpApp = await startTcpApp((socket: Socket) => {
      socket.on('data', (d: Buffer) => {
        got += d.toString();
      });
      socket.on('end', () => {
        appEnded = true;
        socket.end();
      });
      socket.on('error', () => undefined);
    });
    teardown.push(() => app.close());
    const p = await startTcpTunnelPair(ca, { appPort: app.port });
    teardown.push(() => p.close());
    const mesh = await meshClient(p.serverPort, p.clientSvid, [TCP_ALPN]);
    teardown.push(() => void mesh.destroy());
    expect(mesh.alpnProtocol).toBe(TCP_ALPN);
    mesh.write(Buffer.concat([frame('SET k '), frame('whole-value'), END_FRAME]));
    mesh.end();
    await until('the app sees the end', () => appEnded, 3_000);
    expect(got).toBe('SET k whole-value');
  });

  it('ok/a peer that offers only meshauth-tcp/1 gets the raw tunnel, its FIN passed on as a FIN', async () => {
    let appEnded = false;
    let got = '';
    const app: TcpApp = await startTcpApp((socket: Socket) => {
      socket.on('data', (d: Buffer) => {
        got += d.toString();
      });
      socket.on('end', () => {
        appEnded = true;
        socket.end('+OK');
      });
      socket.on('error', () => undefined);
    });
    teardown.push(() => app.close());
    const p = await startTcpTunnelPair(ca, { appPort: app.port });
    teardown.push(() => p.close());
    const mesh = await meshClient(p.serverPort, p.clientSvid, [TCP_ALPN_RAW]);
    teardown.push(() => void mesh.destroy());
    expect(mesh.alpnProtocol).toBe(TCP_ALPN_RAW);
    let answer = '';
    mesh.on('data', (d: Buffer) => {
      answer += d.toString();
    });
    mesh.end('PING raw');
    await until('the app sees the end and answers', () => appEnded && answer === '+OK', 3_000);
    expect(got).toBe('PING raw');
  });

  /** A client sidecar's side of a tunnel, by hand: mTLS with its SVID and the given ALPN list. */
  async function meshClient(
    port: number,
    svid: { readonly svid: Parameters<typeof clientSecureContext>[1]['svid'] },
    alpn: string[],
  ): Promise<TLSSocket> {
    const tcp = netConnect({ host: '127.0.0.1', port, allowHalfOpen: true });
    tcp.on('error', () => undefined);
    const context = clientSecureContext({ tls12: false }, { svid: svid.svid, bundle: ca.bundle });
    const mesh = tlsConnect({
      socket: tcp,
      secureContext: context,
      ALPNProtocols: alpn,
      checkServerIdentity: () => undefined,
    });
    mesh.allowHalfOpen = true;
    mesh.on('error', () => undefined);
    await new Promise<void>((resolve) => mesh.once('secureConnect', () => resolve()));
    return mesh;
  }
});
