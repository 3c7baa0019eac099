// The CA's door bounds what all waiting connections may hold before their turn (found by an outside audit): with
// every handshake slot busy, one client parked a 16 KiB TLS record on each of the 10,000 places in the waiting line,
// 160 MiB held for the 30 s wait, past a CA pod's memory limit. Now the line holds at most MAX_EARLY_BYTES_TOTAL;
// past it the oldest connections with a large first record are closed (counted as overloaded_early_bytes), and
// clients with an ordinary ClientHello-sized first record still get their place.
import { connect, type Socket } from 'node:net';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_EARLY_BYTES_TOTAL } from '../../src/ca/door.js';
import { type CaServer, loadCaMaterial, startCaServer } from '../../src/ca/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { makeCaDir } from '../helpers/ca-dir.js';
import { caRejections } from '../helpers/ca-metrics.js';
import { gaugeOf } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';

const LARGE = 1_500;
const SMALL = 100;
/** One TLS record header and 16 KiB: as much as a waiting connection may send, never a ClientHello. */
const RECORD = Buffer.alloc(16_384 + 5, 0x41);
RECORD.writeUInt8(0x16, 0);
RECORD.writeUInt16BE(0x0301, 1);
RECORD.writeUInt16BE(16_384, 3);

let ca: Awaited<ReturnType<typeof makeCaDir>>;
let server: CaServer;
let metrics: Metrics;
const sockets: Socket[] = [];

beforeAll(async () => {
  ca = await makeCaDir();
  metrics = new Metrics();
  server = await startCaServer({
    dir: ca.dir,
    listen: '127.0.0.1:0',
    svidTtlMs: 10 * 60_000,
    workers: 0,
    connections: { maxActive: 2, maxWaitMs: 60_000 },
    logger: silentLogger(),
    metrics,
  });
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await server?.close();
  ca?.cleanup();
});

/** A raw connection that sends `bytes` and then nothing; `closed` tells when the CA closed it. */
function park(bytes: Buffer, port = server.port): { socket: Socket; closed: () => boolean } {
  let closed = false;
  const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
  socket.on('error', () => undefined);
  socket.once('close', () => {
    closed = true;
  });
  sockets.push(socket);
  return { socket, closed: () => closed };
}

/** Both handshake slots (maxActive 2) held by clients that finished their handshake and say nothing. */
async function holdBothSlots(port: number): Promise<void> {
  const bundlePem = (await loadCaMaterial(ca.dir)).bundle.toPem();
  for (let i = 0; i < 2; i += 1) {
    const holder = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port, ca: bundlePem, servername: 'localhost' }, () => resolve(s));
      s.once('error', reject);
    });
    sockets.push(holder);
  }
}

describe('the CA door: bytes held by waiting connections', () => {
  it('fail/a line of 16 KiB records is bounded; ordinary first records still get their place', async () => {
    await holdBothSlots(server.port);
    const large = Array.from({ length: LARGE }, () => park(RECORD));
    const closedLarge = () => large.filter((c) => c.closed()).length;
    await waitFor(
      'every large connection waiting or closed',
      async () => closedLarge() + (await gaugeOf(metrics, 'meshauth_ca_connections_waiting')) === LARGE,
      20_000,
    );
    // The bound is on bytes: a connection whose record is still arriving in pieces waits with less than 16 KiB, so
    // the count settles at what whole records fit once the last pieces are in.
    const fits = Math.floor(MAX_EARLY_BYTES_TOTAL / RECORD.length);
    await waitFor(
      'the waiting line within the byte bound',
      async () => (await gaugeOf(metrics, 'meshauth_ca_connections_waiting')) <= fits,
      20_000,
    );
    expect(await caRejections(metrics, 'overloaded_early_bytes')).toBeGreaterThan(0);

    // ClientHello-sized first records (512 bytes) still get their places: the large ones make room.
    const small = Array.from({ length: SMALL }, () => park(RECORD.subarray(0, 512)));
    const closed = () => [...large, ...small].filter((c) => c.closed()).length;
    await waitFor(
      'every connection waiting or closed',
      async () => closed() + (await gaugeOf(metrics, 'meshauth_ca_connections_waiting')) === LARGE + SMALL,
      30_000,
    );
    expect(small.filter((c) => c.closed())).toEqual([]);
    await waitFor(
      'the waiting line within the byte bound',
      async () => (await gaugeOf(metrics, 'meshauth_ca_connections_waiting')) <= fits + SMALL,
      20_000,
    );
  }, 60_000);

  it('fail/a pile of records just under any size threshold does not shut out ordinary ClientHellos', async () => {
    // Found by a review of the first version of this bound, which evicted only records over 4 KiB: a line full of
    // 4,096-byte records closed every arriving ClientHello instead. The source holding the most gives way first.
    const second = new Metrics();
    const other = await startCaServer({
      dir: ca.dir,
      listen: '127.0.0.1:0',
      svidTtlMs: 10 * 60_000,
      workers: 0,
      connections: { maxActive: 2, maxWaitMs: 60_000 },
      logger: silentLogger(),
      metrics: second,
    });
    try {
      await holdBothSlots(other.port);
      const record = RECORD.subarray(0, 4096);
      const parked = Math.floor(MAX_EARLY_BYTES_TOTAL / record.length) + 50;
      const pile = Array.from({ length: parked }, () => park(record, other.port));
      await waitFor(
        'every parked connection waiting or closed',
        async () =>
          pile.filter((c) => c.closed()).length + (await gaugeOf(second, 'meshauth_ca_connections_waiting')) === parked,
        30_000,
      );
      expect(await caRejections(second, 'overloaded_early_bytes')).toBeGreaterThan(0);
      const honest = Array.from({ length: 10 }, () => park(RECORD.subarray(0, 512), other.port));
      await waitFor(
        'every connection waiting or closed',
        async () =>
          [...pile, ...honest].filter((c) => c.closed()).length +
            (await gaugeOf(second, 'meshauth_ca_connections_waiting')) ===
          parked + 10,
        30_000,
      );
      expect(honest.filter((c) => c.closed())).toEqual([]);
    } finally {
      await other.close();
    }
  }, 60_000);
});
