// The CA's door before TLS (src/ca/connection-gate.ts) on a real CA: with every handshake slot held, the next
// client waits (its handshake not started) and is served as soon as a slot frees; one that waits past the door's limit is closed before
// its handshake (the CA client reports the CA unreachable), counted as overloaded_wait_timeout and logged once; a
// waiting client that leaves, or sends more than a ClientHello, is let go at once; a keep-alive client gets one answer
// and `Connection: close`; a connection that says nothing never takes a slot (only one that has sent its first bytes
// joins the gate) and is closed after silentMs; close() does not wait for a connection stuck in its handshake.
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchBundle } from '../../src/agent/ca-client.js';
import { type CaServer, type CaServerOptions, loadCaMaterial, startCaServer } from '../../src/ca/index.js';
import { MeshauthError } from '../../src/errors/index.js';
import { TrustDomain } from '../../src/identity/index.js';
import { Metrics } from '../../src/telemetry/index.js';
import { makeCaDir } from '../helpers/ca-dir.js';
import { gaugeOf } from '../helpers/fleet.js';
import { type LogLines, logLines } from '../helpers/log-lines.js';
import { rawClient } from '../helpers/tcp-client.js';
import { waitFor } from '../helpers/wait.js';

const TD = TrustDomain.parse('example.org');
const MAX_ACTIVE = 2;
const MAX_WAIT_MS = 1500;
let ca: Awaited<ReturnType<typeof makeCaDir>>;
let server: CaServer;
let metrics: Metrics;
let bundlePem: string;
let logs: LogLines;
const holders: TLSSocket[] = [];

/** A CA on the shared directory with the given door limits, signing in-thread. */
function startDoorCa(
  connections: NonNullable<CaServerOptions['connections']>,
  serverMetrics = new Metrics(),
  logger = logLines('ca', 'info').logger,
): Promise<CaServer> {
  return startCaServer({
    dir: ca.dir,
    listen: '127.0.0.1:0',
    svidTtlMs: 10 * 60_000,
    workers: 0,
    connections,
    logger,
    metrics: serverMetrics,
  });
}

beforeAll(async () => {
  ca = await makeCaDir();
  bundlePem = (await loadCaMaterial(ca.dir)).bundle.toPem();
  metrics = new Metrics();
  logs = logLines('ca', 'info');
  server = await startDoorCa({ maxActive: MAX_ACTIVE, maxWaitMs: MAX_WAIT_MS }, metrics, logs.logger);
});

afterAll(async () => {
  for (const socket of holders) socket.destroy();
  await server?.close();
  ca?.cleanup();
});

/** A client that completes its TLS handshake and then says nothing: it holds a slot until it closes. */
async function holdSlot(): Promise<TLSSocket> {
  const socket = await new Promise<TLSSocket>((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port: server.port, ca: bundlePem, servername: 'localhost' }, () =>
      resolve(s),
    );
    s.once('error', reject);
  });
  holders.push(socket);
  return socket;
}

const WAITING = 'meshauth_ca_connections_waiting';

describe('the CA door before TLS', () => {
  it('ok/a client arriving while every slot is held waits and is served when one frees', async () => {
    const first = await holdSlot();
    await holdSlot();
    const connection = { caUrl: server.url, trustDomain: TD, bundlePem };
    let settled = false;
    const waiting = fetchBundle(connection).finally(() => {
      settled = true;
    });
    await waitFor('the client to wait at the door', async () => (await gaugeOf(metrics, WAITING)) === 1, 5000);
    expect(settled).toBe(false);
    first.destroy();
    const answer = await waiting;
    expect(answer.bundlePem.length).toBeGreaterThan(0);
    expect(await gaugeOf(metrics, WAITING)).toBe(0);
  });

  it('refused/a client that finds no slot within the wait is closed before its handshake, counted and logged once', async () => {
    // One holder is left from the first case; a second takes the slot its waiting client used.
    await holdSlot();
    const connection = { caUrl: server.url, trustDomain: TD, bundlePem, timeoutMs: 20_000 };
    const outcome = await fetchBundle(connection).then(
      () => 'answered',
      (error: unknown) => error,
    );
    expect(outcome).toBeInstanceOf(MeshauthError);
    expect((outcome as MeshauthError).code).toBe('MESHAUTH_ERR_CA_UNAVAILABLE');
    expect((outcome as MeshauthError).reason).toBe('unreachable');
    expect(await metrics.exposition()).toContain(
      'meshauth_ca_requests_rejected_total{reason="overloaded_wait_timeout"} 1',
    );
    const lines = () => logs.find({ event: 'ca_overloaded', reason: 'wait_timeout' });
    expect(lines()).toHaveLength(1);
    expect(lines()[0]).toMatchObject({ code: 'MESHAUTH_ERR_CA_OVERLOADED', connectionsActive: MAX_ACTIVE });
    // A second refusal within the log interval is counted, not logged again.
    await expect(fetchBundle(connection)).rejects.toMatchObject({ code: 'MESHAUTH_ERR_CA_UNAVAILABLE' });
    expect(await metrics.exposition()).toContain(
      'meshauth_ca_requests_rejected_total{reason="overloaded_wait_timeout"} 2',
    );
    expect(lines()).toHaveLength(1);
    expect(await metrics.exposition()).toContain('meshauth_log_lines_suppressed_total{event="ca_overloaded"} 1');
    // The CA is still up and serves once a slot frees.
    for (const socket of holders.splice(0)) socket.destroy();
    expect((await fetchBundle(connection)).bundlePem.length).toBeGreaterThan(0);
  });
});

/** A TCP client (from `localAddress`, default 127.0.0.1) that sends `bytes` and then nothing more. */
async function sending(port: number, bytes: Buffer, localAddress?: string): Promise<Socket> {
  const { socket } = await rawClient(port, localAddress === undefined ? {} : { localAddress });
  socket.write(bytes);
  return socket;
}

describe('waiting clients that leave or say too much, keep-alive, and close()', () => {
  let small: CaServer;
  let smallMetrics: Metrics;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    smallMetrics = new Metrics();
    small = await startDoorCa({ maxActive: 1, maxWaitMs: 20_000 }, smallMetrics);
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
  });

  const waitingGauge = () => gaugeOf(smallMetrics, WAITING);

  it('ok/a keep-alive client gets one answer with Connection: close, so it cannot keep its slot', async () => {
    const agent = new HttpsAgent({ keepAlive: true, ca: bundlePem, servername: 'localhost' });
    try {
      const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
        const req = httpsRequest(`${small.url}/v1/bundle`, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.headers));
        });
        req.on('error', reject);
        req.end();
      });
      expect(headers.connection).toBe('close');
    } finally {
      agent.destroy();
    }
  });

  it('ok/a waiting client that leaves is let go at once; one that sends more than a ClientHello is closed', async () => {
    // A partial ClientHello holds the only slot (its handshake waits for the rest).
    sockets.push(await sending(small.port, Buffer.from([0x16, 0x03, 0x01])));
    const leaving = await sending(small.port, Buffer.from([0x16, 0x03, 0x01]));
    await waitFor('the second client to wait', async () => (await waitingGauge()) === 1, 5000);
    leaving.end();
    // The sweep (every 500 ms) refreshes the gauge.
    await waitFor('the leaving client to be counted out', async () => (await waitingGauge()) === 0, 5000);
    const flooding = await sending(small.port, Buffer.from([0x16, 0x03, 0x01]));
    let closed = false;
    flooding.once('close', () => {
      closed = true;
    });
    flooding.write(Buffer.alloc(20_000, 1));
    await waitFor('the client that sent too much to be closed', () => closed, 5000);
  });

  it('ok/close() does not wait for a connection stuck in its handshake', async () => {
    // The partial ClientHello from the case above still holds the slot; its handshake times out only after 10 s.
    await small.close();
  }, 5000);
});

describe('a silent connection at the door', () => {
  let quick: CaServer;
  const silent: Socket[] = [];

  beforeAll(async () => {
    quick = await startDoorCa({ maxActive: 1, maxWaitMs: 20_000, silentMs: 1500 });
  });

  afterAll(async () => {
    for (const socket of silent) socket.destroy();
    await quick?.close();
  });

  it('ok/a silent connection takes no slot: the next client is served at once, and the silent one is closed later', async () => {
    const idle = (await rawClient(quick.port)).socket;
    silent.push(idle);
    let closed = false;
    idle.once('close', () => {
      closed = true;
    });
    const answer = await fetchBundle({ caUrl: quick.url, trustDomain: TD, bundlePem, timeoutMs: 20_000 });
    expect(answer.bundlePem.length).toBeGreaterThan(0);
    expect(closed).toBe(false);
    await waitFor('the silent connection to be closed', () => closed, 10_000);
  });

  it('ok/a silent connection after the door went idle is closed too (the sweep runs only while somebody is there)', async () => {
    const later = (await rawClient(quick.port)).socket;
    silent.push(later);
    let closed = false;
    later.once('close', () => {
      closed = true;
    });
    await waitFor('the later silent connection to be closed', () => closed, 10_000);
  });
});

describe('sources take turns at the door', () => {
  let fair: CaServer;
  let fairMetrics: Metrics;
  const attacker: Socket[] = [];

  beforeAll(async () => {
    fairMetrics = new Metrics();
    // Four slots: a source holding one is at its share.
    fair = await startDoorCa({ maxActive: 4, maxWaitMs: 20_000 }, fairMetrics);
  });

  afterAll(async () => {
    for (const socket of attacker) socket.destroy();
    await fair?.close();
  });

  /** A connection from 127.0.0.2 that sends the start of a ClientHello and stalls: its slot is held until it goes. */
  async function stall(): Promise<Socket> {
    const socket = await sending(fair.port, Buffer.from([0x16, 0x03, 0x01]), '127.0.0.2');
    attacker.push(socket);
    return socket;
  }

  it('ok/one source holding every slot and a line of stalled connections cannot keep another source out', async () => {
    const held = [await stall(), await stall(), await stall(), await stall()];
    for (let i = 0; i < 6; i += 1) await stall();
    await waitFor('the stalled line to wait', async () => (await gaugeOf(fairMetrics, WAITING)) === 6, 5000);
    const answer = fetchBundle({ caUrl: fair.url, trustDomain: TD, bundlePem, timeoutMs: 20_000 });
    await waitFor('the client to wait too', async () => (await gaugeOf(fairMetrics, WAITING)) === 7, 5000);
    // One stalled slot frees: in arrival order it would go to the next stalled connection, and the client would wait
    // behind all six for their handshakes to time out.
    held[0]?.destroy();
    expect((await answer).bundlePem.length).toBeGreaterThan(0);
    expect(await gaugeOf(fairMetrics, WAITING)).toBe(6);
  });
});
