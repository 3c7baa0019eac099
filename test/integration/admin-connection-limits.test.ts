// The admin port's connection caps on real sockets. Found in review: the port (on the pod's address for the kubelet,
// no credential) held every connection offered, idle ones for up to 35 s, and forwarded every /app-health request
// to the app on a connection of its own: one client could exhaust the sidecar's file descriptors and with them the
// inbound and the app hop. Now: 64 connections, 16 per client address, idle ones closed after 5 s, and one forward
// per probe at a time, shared by whoever asks meanwhile (a cap that refused past four let any pod fail the kubelet's
// own probe). A probe found pipelining: 16 connections × 16,000 `GET /metrics` sent without reading had node:http
// start every request, each queued answer holding its own copy of the exposition, until the heap ran out (2.4 s at
// 192 MB). Now a second request while the first is unanswered closes the connection.
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_MAX_CONNECTIONS, ADMIN_MAX_CONNECTIONS_PER_SOURCE } from '../../src/telemetry/admin-connections.js';
import { AdminServer } from '../../src/telemetry/admin-server.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { until, waitFor } from '../helpers/wait.js';

/** A TCP connection from `localAddress`, resolved once connected; `closed` tells whether the server closed it. */
async function open(port: number, localAddress = '127.0.0.1'): Promise<{ socket: Socket; closed: () => boolean }> {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  socket.resume(); // read (and drop) whatever the port answers, so its close is seen
  let closed = false;
  socket.on('error', () => undefined);
  socket.once('close', () => {
    closed = true;
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, closed: () => closed };
}

describe('admin port connection limits', () => {
  let metrics: Metrics;
  let admin: AdminServer;
  let app: Server;
  let held: Socket[] = [];
  const heldProbes: (() => void)[] = [];
  /** Requests the app's probe endpoint received: one per forward. */
  let appCalls = 0;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    // The app's probe answers only when the test lets it (a slow app, or a client holding probes open).
    app = createServer((_req, res) => {
      appCalls += 1;
      heldProbes.push(() => res.writeHead(200).end('fine'));
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    metrics = new Metrics();
    admin = new AdminServer({
      host: '127.0.0.1',
      port: 0,
      metrics,
      logger: silentLogger(),
      readiness: () => true,
      appProbes: new Map([['api', { livez: { port: (app.address() as AddressInfo).port, path: '/healthz' } }]]),
    });
    await admin.listen();
  });
  afterEach(async () => {
    for (const socket of [...held, ...sockets]) socket.destroy();
    held = [];
    // The port sees those closes a moment later: the next test starts once it answers again.
    await waitFor('the admin port free again', async () => (await livez('127.0.0.8')) === 200);
    for (const socket of sockets.splice(0)) socket.destroy();
  });
  afterAll(async () => {
    for (const answer of heldProbes) answer();
    await admin?.close();
    app?.closeAllConnections();
    await new Promise<void>((resolve) => (app ? app.close(() => resolve()) : resolve()));
  });

  const rejected = async (reason: string) => {
    const text = await metrics.registry.metrics();
    const line = text
      .split('\n')
      .find((l) => l.startsWith(`meshauth_connections_rejected_total{direction="admin",reason="${reason}"}`));
    return Number(line?.split(' ').pop() ?? 0);
  };
  const livez = (localAddress: string) =>
    new Promise<number>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: admin.port, localAddress });
      sockets.push(socket);
      let text = '';
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString('latin1');
        if (text.includes('\r\n\r\n')) resolve(Number(text.split(' ')[1]));
      });
      socket.once('error', reject);
      socket.once('close', () => resolve(0));
      socket.write('GET /livez HTTP/1.1\r\nhost: admin\r\n\r\n');
    });

  it('fail/one client address holds at most 16 connections; ok/another address still gets its answer', async () => {
    for (let i = 0; i < ADMIN_MAX_CONNECTIONS_PER_SOURCE; i++) held.push((await open(admin.port)).socket);
    const extra = await open(admin.port);
    await waitFor('the 17th connection closed', () => extra.closed());
    expect(await rejected('max_connections_per_source')).toBe(1);
    expect(held.every((socket) => !socket.destroyed)).toBe(true);

    expect(await livez('127.0.0.2')).toBe(200);
  });

  it('fail/the port holds at most 64 connections; ok/a place freed is taken again', async () => {
    const sources = ADMIN_MAX_CONNECTIONS / ADMIN_MAX_CONNECTIONS_PER_SOURCE;
    for (let s = 0; s < sources; s++) {
      for (let i = 0; i < ADMIN_MAX_CONNECTIONS_PER_SOURCE; i++) {
        held.push((await open(admin.port, `127.0.0.${s + 3}`)).socket);
      }
    }
    const before = await rejected('max_connections');
    const extra = await open(admin.port, '127.0.0.9');
    await waitFor('the 65th connection closed', () => extra.closed());
    await waitFor('the drop counted', async () => (await rejected('max_connections')) === before + 1);

    held.pop()?.destroy();
    await waitFor('a place freed', async () => (await livez('127.0.0.9')) === 200);
  });

  it('fail/probes of one container and kind asked at once share one forward: one connection to the app, one answer for all', async () => {
    // Six asks at once, each on a connection of its own (pipelined on one, they would close it): each that arrives
    // while the first one's forward runs joins it (as the kubelet's ask does while another client's are). All six are
    // connected first and written in one turn; on a loaded machine one may still arrive after the forward ended and
    // start its own, so the count of forwards is bounded rather than exact.
    let text = '';
    const asks = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const socket = connect({ host: '127.0.0.1', port: admin.port, localAddress: '127.0.0.2' });
        sockets.push(socket);
        socket.on('data', (chunk: Buffer) => {
          text += chunk.toString('latin1');
        });
        await new Promise<void>((resolve) => socket.once('connect', resolve));
        return socket;
      }),
    );
    const forwardsBefore = appCalls;
    for (const socket of asks) socket.write('GET /app-health/api/livez HTTP/1.1\r\nhost: admin\r\n\r\n');
    await waitFor('the probe at the app', () => heldProbes.length === 1);
    await waitFor('six answers', () => {
      for (const answer of heldProbes.splice(0)) answer();
      return (text.match(/HTTP\/1\.1 \d+/g) ?? []).length === 6;
    });
    expect(text.match(/HTTP\/1\.1 \d+/g)).toEqual(Array(6).fill('HTTP/1.1 200'));
    expect(appCalls - forwardsBefore).toBeLessThan(6);
    expect(heldProbes).toHaveLength(0);

    // The next ask, after that answer, asks the app again.
    const again = fetch(`http://127.0.0.1:${admin.port}/app-health/api/livez`);
    await waitFor('the next probe at the app', () => heldProbes.length === 1);
    heldProbes.splice(0)[0]?.();
    expect((await again).status).toBe(200);
  });

  it('ok/a shared forward whose askers all went away is abandoned, and the next ask starts its own', async () => {
    const controller = new AbortController();
    const gone = fetch(`http://127.0.0.1:${admin.port}/app-health/api/livez`, { signal: controller.signal }).catch(
      () => 'aborted',
    );
    await waitFor('the probe at the app', () => heldProbes.length === 1);
    controller.abort();
    expect(await gone).toBe('aborted');
    const next = fetch(`http://127.0.0.1:${admin.port}/app-health/api/livez`);
    await waitFor('a new probe at the app', () => heldProbes.length === 2);
    for (const answer of heldProbes.splice(0)) answer();
    expect((await next).status).toBe(200);
  });

  it('fail/requests pipelined without reading the answers close the connection; few are started, the heap stays flat', async () => {
    const before = await rejected('pipelined');
    const heapBefore = process.memoryUsage().heapUsed;
    await Promise.all(
      Array.from({ length: ADMIN_MAX_CONNECTIONS_PER_SOURCE }, async () => {
        const socket = connect({ host: '127.0.0.1', port: admin.port, localAddress: '127.0.0.9' });
        sockets.push(socket);
        socket.on('error', () => undefined);
        socket.pause(); // never reads (so it does not see its close either: the port's count says it)
        await new Promise<void>((resolve) => socket.once('connect', resolve));
        socket.write('GET /metrics HTTP/1.1\r\nhost: admin\r\n\r\n'.repeat(4_000));
      }),
    );
    await waitFor(
      'every pipelining connection closed',
      async () => (await rejected('pipelined')) - before === ADMIN_MAX_CONNECTIONS_PER_SOURCE,
      10_000,
    );
    // 64,000 requests were sent: at most a parsed chunk of each connection was started, not one exposition each.
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024);
    expect(await livez('127.0.0.8')).toBe(200);
  });

  // The last two cases each wait out a timer of node:http's (5 s), so they run side by side. Neither moves what the
  // other reads: the idle connection is closed by the head timeout (no answer owed: not `stalled`), and the keep-alive
  // client is one connection of its own address (no cap reached). Their sockets are closed by their own teardown, not
  // by afterEach, which runs when the first of them ends.
  it.concurrent('fail/a connection that sends no request is closed at the 5 s head timeout, not held for half a minute', async ({
    expect,
    onTestFinished,
  }) => {
    const refusedBefore = [await rejected('max_connections'), await rejected('max_connections_per_source')];
    const idle = await open(admin.port, '127.0.0.2');
    onTestFinished(() => {
      idle.socket.destroy();
    });
    await waitFor('the idle connection closed', () => idle.closed(), 15_000, 100);
    // Closed by the head timeout, not refused by a cap.
    expect([await rejected('max_connections'), await rejected('max_connections_per_source')]).toEqual(refusedBefore);
  }, 20_000);

  it.concurrent('ok/a keep-alive client asking one request after another is never taken for pipelining', async ({
    expect,
    onTestFinished,
  }) => {
    const before = await rejected('pipelined');
    const socket = connect({ host: '127.0.0.1', port: admin.port, localAddress: '127.0.0.7' });
    onTestFinished(() => {
      socket.destroy();
    });
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
    });
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    for (let i = 1; i <= 50; i++) {
      socket.write('GET /livez HTTP/1.1\r\nhost: admin\r\n\r\n');
      await until(`answer ${i}`, () => text.split('HTTP/1.1 200').length - 1 === i);
    }
    expect(socket.destroyed).toBe(false);
    expect(await rejected('pipelined')).toBe(before);
    // Left idle, it is closed at node:http's keep-alive timeout, as Prometheus's connection is after each scrape:
    // that is no stall (the same socket timer reaches the guard), so it is neither counted nor logged as one.
    const stalledBefore = await rejected('stalled');
    let closed = false;
    socket.once('close', () => {
      closed = true;
    });
    await waitFor('the idle keep-alive connection closed', () => closed, 15_000);
    expect(await rejected('stalled')).toBe(stalledBefore);
  }, 30_000);
});
