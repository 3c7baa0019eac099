// The gateway's public listener gives one client address at most maxConnectionsPerAddress open connections: the
// rest are closed at accept and counted, and another address is still served. Run on the listener itself with a
// small share (the default, 1,024, would need more sockets in one process than Node 24 accepts promptly here).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PublicListener } from '../../src/gateway/public-listener.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

const SHARE = 8;

describe('gateway public listener: one address holds at most its share of connections', () => {
  let ca: TestCa;
  let dir: string;
  let listener: PublicListener;
  const metrics = new Metrics();
  beforeAll(async () => {
    ca = await TestCa.create();
    dir = mkdtempSync(join(tmpdir(), 'meshauth-public-share-'));
    const server = await ca.issue({ id: ca.idFor('/ns/edge/sa/public'), ipAddresses: ['127.0.0.1', '127.0.0.2'] });
    writeFileSync(join(dir, 'tls.crt'), server.chainPem);
    writeFileSync(join(dir, 'tls.key'), server.keyPem, { mode: 0o600 });
    listener = new PublicListener({
      listen: { host: '127.0.0.1', port: 0 },
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      maxHeaderBytes: 16 * 1024,
      logger: silentLogger(),
      metrics,
      limits: { maxConnectionsPerAddress: SHARE },
      onRequest: (_req, res) => res.end('ok'),
    });
    await listener.listen();
  });
  afterAll(async () => {
    await listener?.close(Date.now());
    rmSync(dir, { recursive: true, force: true });
  });

  const perAddress = async () =>
    (await metrics.connectionsRejected.get()).values.find(
      (v) => v.labels.direction === 'edge' && v.labels.reason === 'per_address',
    )?.value ?? 0;

  it('fail/one address opening more than its share → the rest are closed at accept, counted; another is served', async () => {
    const sockets: Socket[] = [];
    let closed = 0;
    try {
      for (let i = 0; i <= SHARE; i++) {
        const socket = netConnect({ host: '127.0.0.1', port: listener.port });
        socket.on('error', () => undefined);
        socket.once('close', () => {
          closed += 1;
        });
        sockets.push(socket);
      }
      await waitFor('a connection over the share closed', () => closed > 0, 5_000, 20);
      expect(closed).toBe(1);
      expect(await perAddress()).toBe(1);
      // Another address (127.0.0.2 as the client's source) completes its handshake.
      const other = await new Promise<boolean>((resolve) => {
        const tls = tlsConnect({
          host: '127.0.0.1',
          port: listener.port,
          ca: [ca.rootPem],
          servername: 'localhost',
          ...({ localAddress: '127.0.0.2' } as object),
          checkServerIdentity: () => undefined,
        });
        tls.once('secureConnect', () => {
          tls.destroy();
          resolve(true);
        });
        tls.once('error', () => resolve(false));
      });
      expect(other).toBe(true);
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  });
});
