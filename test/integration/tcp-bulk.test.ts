// 100 MiB each way through a TCP tunnel at the same time (full duplex), binary data: both streams arrive
// byte-identical (sha256) with backpressure in both directions at once, and the tunnel closes cleanly after.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawClient, until } from '../helpers/tcp-client.js';
import { startTcpApp, startTcpTunnelPair, type TcpApp, type TcpTunnelPair } from '../helpers/tcp-tunnel-pair.js';
import { TestCa } from '../helpers/test-ca.js';

const MiB = 1024 * 1024;
const CHUNKS = 100;

/** CHUNKS MiB: one random MiB, each copy stamped with its index so reordering or a repeat changes the hash. */
function* payload(seed: Buffer): Generator<Buffer> {
  for (let i = 0; i < CHUNKS; i++) {
    const chunk = Buffer.from(seed);
    chunk.writeUInt32BE(i, 0);
    yield chunk;
  }
}

function digestOf(seed: Buffer): string {
  const hash = createHash('sha256');
  for (const chunk of payload(seed)) hash.update(chunk);
  return hash.digest('hex');
}

async function sendAll(socket: Socket, seed: Buffer): Promise<void> {
  for (const chunk of payload(seed)) {
    if (!socket.write(chunk)) await once(socket, 'drain');
  }
  socket.end();
}

/** Hashes everything that arrives until the FIN. */
function receiveAll(socket: Socket): Promise<{ hash: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  socket.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    bytes += chunk.length;
  });
  return new Promise((resolve) => socket.once('end', () => resolve({ hash: hash.digest('hex'), bytes })));
}

describe('tcp tunnel bulk transfer', () => {
  let ca: TestCa;
  let app: TcpApp;
  let pair: TcpTunnelPair;
  const up = randomBytes(MiB);
  const down = randomBytes(MiB);
  let atApp: Promise<{ hash: string; bytes: number }> | undefined;

  beforeAll(async () => {
    ca = await TestCa.create();
    app = await startTcpApp((socket) => {
      atApp = receiveAll(socket);
      void sendAll(socket, down);
    });
    pair = await startTcpTunnelPair(ca, { appPort: app.port });
  });
  afterAll(async () => {
    await pair?.close();
    await app?.close();
  });

  it('ok/100 MiB each way at once arrive byte-identical', async () => {
    const client = await rawClient(pair.port, { allowHalfOpen: true });
    const atClient = receiveAll(client.socket);
    await Promise.all([sendAll(client.socket, up), until('app connection', () => atApp !== undefined, 10_000)]);
    const [gotDown, gotUp] = await Promise.all([atClient, atApp]);
    expect(gotUp).toEqual({ hash: digestOf(up), bytes: CHUNKS * MiB });
    expect(gotDown).toEqual({ hash: digestOf(down), bytes: CHUNKS * MiB });
    expect(await client.closed).toBeUndefined();
    await until('tunnel released', () => pair.outbound.open === 0 && pair.inbound.open === 0);
  }, 120_000);
});
