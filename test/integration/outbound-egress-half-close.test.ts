// An egress tunnel must pass a clean end (FIN) on as a clean end, one direction at a time, as the
// mesh tunnels do (tcp-tunnel.ts: allowHalfOpen on both sockets). The upstream socket is made without allowHalfOpen,
// so when the upstream half-closes Node ends our side too, and the app's next bytes fail on it with a self-made
// EPIPE ("This socket has been ended by the other party"), the tunnel closes, and the app's upload after the
// answer is refused (EPIPE at the app) and never reaches the upstream. Since 79d971c that self-made EPIPE is also
// taken for an upstream reset and passed on to the app as an RST. Pre-existing (before 79d971c the outcome was the
// same), but it contradicts the commit's "a clean close is passed on as a close".
//
// Harness as in outbound-egress-reset.test.ts:
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

describe('egress tunnel: a clean half-close passes through as one', () => {
  let ca: TestCa;
  let upstream: Server;
  let upstreamPort = 0;
  let a: TestSidecar;
  const upstreamSockets: Socket[] = [];
  const upstreamSeen: { bytes: number; ended: boolean; error: string | undefined }[] = [];

  beforeAll(async () => {
    ca = await TestCa.create();
    // Answers at the first bytes and half-closes (shutdown SHUT_WR), still reading the rest of the upload.
    upstream = createTcpServer({ allowHalfOpen: true }, (socket) => {
      const seen = { bytes: 0, ended: false, error: undefined as string | undefined };
      upstreamSeen.push(seen);
      upstreamSockets.push(socket);
      socket.on('data', (d: Buffer) => {
        if (seen.bytes === 0) socket.end('answer');
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

  it('fail/the upstream answers and half-closes while the app still uploads: a clean end for the app, the whole upload for the upstream', async () => {
    const socket = netConnect({ host: '127.0.0.1', port: a.sidecar.outboundPort, allowHalfOpen: true });
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
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const target = `${UPSTREAM_NAME}:${upstreamPort}`;
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
    await until('200 Connection Established', () => text.includes('\r\n\r\n'));
    const headLength = text.indexOf('\r\n\r\n') + 4;
    // The upload: 2 MiB in 16 KiB writes, one every millisecond, then the app's own clean end.
    const chunk = Buffer.alloc(16 * 1024, 0x62);
    let sent = 0;
    while (sent < 2 * 1024 * 1024 && !socket.destroyed) {
      socket.write(chunk);
      sent += chunk.length;
      await new Promise((r) => setTimeout(r, 1));
    }
    socket.end();
    await Promise.race([closed, new Promise((r) => setTimeout(r, 3_000))]);
    expect(text.slice(headLength)).toBe('answer');
    expect({ ended, code }, "the upstream's clean end reached the app as").toEqual({ ended: true, code: undefined });
    const seen = upstreamSeen[upstreamSeen.length - 1];
    await until('upstream saw the end of the upload', () => seen?.ended === true || seen?.error !== undefined);
    expect(seen).toEqual({ bytes: sent, ended: true, error: undefined });
  }, 20_000);
});
