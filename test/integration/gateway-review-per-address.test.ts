// Outside review (2026-12-02), check (d8172ab, PublicListener #perAddress): connections closed before or during the TLS
// handshake must give their per-address slot back, or 1,024 aborted handshakes lock an address out.
import { connect as netConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PUBLIC_LIMITS } from '../../src/gateway/public-listener.js';
import { type BadMesh, h1Exchange, startBadMesh } from '../helpers/gateway-bad-service.js';

describe('gateway (outside review): per-address connection count', () => {
  let m: BadMesh;
  beforeAll(async () => {
    m = await startBadMesh();
  });
  afterAll(async () => {
    await m?.close();
  });

  it('ok/more aborted handshakes than the per-address cap → the address is still served', async () => {
    const total = PUBLIC_LIMITS.maxConnectionsPerAddress + 100;
    for (let done = 0; done < total; done += 100) {
      await Promise.all(
        Array.from(
          { length: 100 },
          (_, i) =>
            new Promise<void>((resolve) => {
              const s = netConnect(m.port, '127.0.0.1');
              s.on('error', () => undefined);
              s.on('close', () => resolve());
              s.on('connect', () => {
                // half a ClientHello, then gone: mid-handshake (every other one a reset)
                s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]));
                if (i % 2 === 0) s.resetAndDestroy();
                else s.end();
              });
            }),
        ),
      );
    }
    const r = await h1Exchange(
      m.port,
      m.mesh.files.caPem,
      `GET /bad/echo HTTP/1.1\r\nHost: 127.0.0.1:${m.port}\r\nConnection: close\r\n\r\n`,
      3_000,
    );
    expect(r.text.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
  }, 30_000);
});
