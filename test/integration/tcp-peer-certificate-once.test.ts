// The TCP outbound opens one TLS connection per tunnel, so it meets the same peer certificate again and again: its
// SVID checks must not parse that certificate through @peculiar/x509 (about a millisecond) every time. Real TLS on
// 127.0.0.1; only the parse function is wrapped, to count which DER it was given.
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { rawClient, until } from '../helpers/tcp-client.js';
import { startTcpTunnelPair, type TcpTunnelPair } from '../helpers/tcp-tunnel-pair.js';
import { TestCa } from '../helpers/test-ca.js';

const parsed = vi.hoisted(() => [] as string[]);

vi.mock('../../src/pki/certificates.js', async (original) => {
  const module = await original<typeof import('../../src/pki/certificates.js')>();
  return {
    ...module,
    parseCertificate: (data: Parameters<typeof module.parseCertificate>[0]) => {
      if (data instanceof Uint8Array) parsed.push(Buffer.from(data).toString('base64'));
      return module.parseCertificate(data);
    },
  };
});

describe('TCP outbound: the peer certificate is parsed once, not per tunnel', () => {
  let ca: TestCa;
  let app: Server;
  let pair: TcpTunnelPair;

  beforeAll(async () => {
    ca = await TestCa.create();
    app = createServer((socket) => socket.pipe(socket));
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    pair = await startTcpTunnelPair(ca, { appPort: (app.address() as { port: number }).port });
  });
  afterAll(async () => {
    await pair?.close(0);
    app?.close();
  });

  it('ok/three tunnels to the same peer sidecar: its leaf parsed once', async () => {
    const serverLeaf = Buffer.from(pair.serverSvid.leaf.rawData).toString('base64');
    parsed.length = 0;
    for (const text of ['a', 'b', 'c']) {
      const client = await rawClient(pair.port);
      client.socket.write(text);
      await until(`echo ${text}`, () => client.received().toString() === text);
      client.socket.end();
      await client.closed;
    }
    expect(parsed.filter((der) => der === serverLeaf).length, 'parses of the server leaf').toBe(1);
    expect(await pair.clientMetrics.registry.metrics()).toContain(
      `meshauth_tcp_connections_total{direction="outbound",peer_id="${pair.serverSvid.id}",result="established"} 3`,
    );
  });
});
