// At the drain deadline the outbound destroys each egress tunnel's
// upstream socket, whose clean close then destroys the app's socket: both sides see a FIN, a cut download reaches
// the app as a complete one. The mesh tunnels reset both ways at the deadline (tcp-tunnel.ts shutdown), and
// docs/security-limits.md now promises "no clean end" for a cut egress tunnel.
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

describe('egress tunnel cut at the drain deadline', () => {
  let ca: TestCa;
  let upstream: Server;
  let upstreamPort = 0;
  let a: TestSidecar | undefined;
  const upstreamSockets: Socket[] = [];
  const upstreamSeen: { ended: boolean; error: string | undefined }[] = [];

  beforeAll(async () => {
    ca = await TestCa.create();
    upstream = createTcpServer({ allowHalfOpen: true }, (socket) => {
      const seen = { ended: false, error: undefined as string | undefined };
      upstreamSeen.push(seen);
      upstreamSockets.push(socket);
      socket.on('end', () => {
        seen.ended = true;
      });
      socket.on('error', (e: Error & { code?: string }) => {
        seen.error = e.code ?? e.message;
      });
      socket.write('partial download');
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

  it('fail/both the app and the upstream see a reset, not a clean end', async () => {
    const sidecar = a as TestSidecar;
    const socket = netConnect({ host: '127.0.0.1', port: sidecar.sidecar.outboundPort });
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
    await until('partial download', () => text.endsWith('partial download'));
    await sidecar.sidecar.close(0);
    await closed;
    expect({ ended, code }, 'the app was told the download ended cleanly').toEqual({
      ended: false,
      code: 'ECONNRESET',
    });
    const seen = upstreamSeen[upstreamSeen.length - 1];
    await until('upstream closed', () => seen?.ended === true || seen?.error !== undefined);
    expect(seen, 'the upstream was told the tunnel ended cleanly').toEqual({ ended: false, error: 'ECONNRESET' });
  }, 20_000);
});
