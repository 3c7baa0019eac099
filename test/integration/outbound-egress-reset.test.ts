// An egress tunnel (CONNECT host:port to an `outbound.egress` entry) is a raw TCP relay,
// like the mesh tunnels, and must pass a reset on as a reset: an upstream that dies mid-stream must not reach the app
// as a clean end (FIN) of a shorter stream, and an app that resets must not reach the upstream as a clean end of a
// shorter upload. docs/outbound.md: "Truncation is never hidden". Plain protocols go through egress too
// (`host:port` entries), where nothing but TCP tells a complete stream from a cut one.
//
// Every server here is on loopback, which egress refuses by design (a resolved loopback address is a 403
// egress_loopback). The test replaces only that check (isLoopbackTarget) so the tunnel can reach a loopback server;
// everything else — the matcher, the sockets — is the real code, and the lookup answers the upstream's name alone.

import { createServer as createTcpServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestSidecar, type TestSidecar, testConfig } from '../helpers/sidecar-harness.js';
import { until } from '../helpers/tcp-client.js';
import { TestCa } from '../helpers/test-ca.js';

// The upstream's name: config refuses loopback egress entries, so the test gives the upstream a name of its own
// that the outbound's lookup (and nothing else) resolves to 127.0.0.1.
const UPSTREAM_NAME = 'egress-upstream.test';

vi.mock('../../src/sidecar/outbound/egress-matcher.js', async (original) => ({
  ...(await original<typeof import('../../src/sidecar/outbound/egress-matcher.js')>()),
  isLoopbackTarget: () => false,
}));

vi.mock('node:dns', async (original) => {
  const dns = await original<typeof import('node:dns')>();
  const lookup = ((host: string, options: unknown, callback: (...args: unknown[]) => void) =>
    host === 'egress-upstream.test'
      ? callback(null, [{ address: '127.0.0.1', family: 4 }])
      : (dns.lookup as (...args: unknown[]) => void)(host, options, callback)) as typeof dns.lookup;
  return { ...dns, default: { ...dns, lookup }, lookup };
});

describe('egress tunnel: resets pass through as resets', () => {
  let ca: TestCa;
  let upstream: Server;
  let upstreamPort = 0;
  let a: TestSidecar;
  const upstreamSockets: Socket[] = [];
  const upstreamSeen: { bytes: number; ended: boolean; error: string | undefined }[] = [];

  beforeAll(async () => {
    ca = await TestCa.create();
    upstream = createTcpServer({ allowHalfOpen: true }, (socket) => {
      const seen = { bytes: 0, ended: false, error: undefined as string | undefined };
      upstreamSeen.push(seen);
      upstreamSockets.push(socket);
      socket.on('data', (d: Buffer) => {
        seen.bytes += d.length;
      });
      socket.on('end', () => {
        seen.ended = true;
      });
      socket.on('error', (e: Error & { code?: string }) => {
        seen.error = e.code ?? e.message;
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamPort = (upstream.address() as { port: number }).port;
    a = await startTestSidecar(
      ca,
      ca.idFor('/ns/a/sa/a'),
      testConfig({ appPort: 1, egress: [`${UPSTREAM_NAME}:${upstreamPort}`] }),
    );
  });
  afterAll(async () => {
    await a?.sidecar.close(0);
    for (const s of upstreamSockets) s.destroy();
    upstream?.close();
  });

  /** A raw client through CONNECT; resolves once the tunnel is up. */
  async function tunnel(): Promise<{
    socket: Socket;
    received: () => string;
    closed: Promise<{ ended: boolean; code: string | undefined }>;
  }> {
    const socket = netConnect({ host: '127.0.0.1', port: a.sidecar.outboundPort });
    let text = '';
    let ended = false;
    let code: string | undefined;
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
    });
    socket.on('end', () => {
      ended = true;
    });
    socket.on('error', (e: Error & { code?: string }) => {
      code = e.code;
    });
    const closed = new Promise<{ ended: boolean; code: string | undefined }>((resolve) =>
      socket.once('close', () => resolve({ ended, code })),
    );
    const target = `${UPSTREAM_NAME}:${upstreamPort}`;
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
    await until('200 Connection Established', () => text.includes('\r\n\r\n'));
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    const headLength = text.indexOf('\r\n\r\n') + 4;
    return { socket, received: () => text.slice(headLength), closed };
  }

  it('fail/the upstream resets mid-stream: the app sees a reset, not a clean end', async () => {
    const before = upstreamSockets.length;
    const client = await tunnel();
    await until('upstream accepted', () => upstreamSockets.length > before);
    const server = upstreamSockets[upstreamSockets.length - 1] as Socket;
    server.write('partial answer');
    await until('partial arrives', () => client.received() === 'partial answer');
    server.resetAndDestroy();
    const closed = await client.closed;
    // Nothing after the upstream's bytes: the tunnel is a byte stream, no error response belongs in it.
    expect(client.received()).toBe('partial answer');
    expect(closed, 'the app was told the stream ended cleanly').toEqual({ ended: false, code: 'ECONNRESET' });
  });

  it('fail/the app resets mid-upload: the upstream sees a reset, not a clean end', async () => {
    const before = upstreamSockets.length;
    const client = await tunnel();
    await until('upstream accepted', () => upstreamSockets.length > before);
    const seen = upstreamSeen[upstreamSeen.length - 1] as (typeof upstreamSeen)[number];
    client.socket.write('partial upload');
    await until('upload arrives', () => seen.bytes === 'partial upload'.length);
    client.socket.resetAndDestroy();
    const server = upstreamSockets[upstreamSockets.length - 1] as Socket;
    await until('upstream closed', () => server.destroyed || seen.ended || seen.error !== undefined);
    await new Promise((r) => setTimeout(r, 100));
    expect(seen, 'the upstream was told the upload ended cleanly').toMatchObject({ ended: false, error: 'ECONNRESET' });
  });

  it('ok/the upstream sends 8 MiB and closes at once, the app reads slowly: every byte arrives before the FIN', async () => {
    const size = 8 * 1024 * 1024;
    const before = upstreamSockets.length;
    const client = await tunnel();
    await until('upstream accepted', () => upstreamSockets.length > before);
    // A slow reader: the sidecar's writes toward the app queue up behind it until the very end.
    client.socket.on('data', () => {
      client.socket.pause();
      setTimeout(() => client.socket.resume(), 2);
    });
    const server = upstreamSockets[upstreamSockets.length - 1] as Socket;
    server.end(Buffer.alloc(size, 0x61));
    const closed = await client.closed;
    expect(closed.ended, 'a clean end').toBe(true);
    expect(client.received().length, 'bytes before the clean end').toBe(size);
  }, 20_000);
});
