// Outside review (2026-12-02) probes for the meshauth-tcp/2 framed tunnel: backpressure, half-close orders, early ends,
// resets.
import { createHash, randomBytes } from 'node:crypto';
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { rawClient, until } from '../helpers/tcp-client.js';
import { startTcpApp, startTcpTunnelPair, type TcpApp } from '../helpers/tcp-tunnel-pair.js';
import { TestCa } from '../helpers/test-ca.js';

let ca: TestCa;
const teardown: (() => Promise<void> | void)[] = [];
beforeAll(async () => {
  ca = await TestCa.create();
});
afterEach(async () => {
  for (const fn of teardown.splice(0).reverse()) await fn();
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Reads `socket` slowly: pauses `pauseMs` after every `every` bytes. */
function slowRead(socket: Socket, every: number, pauseMs: number, chunks: Buffer[]): void {
  let since = 0;
  socket.on('data', (d: Buffer) => {
    chunks.push(d);
    since += d.length;
    if (since >= every) {
      since = 0;
      socket.pause();
      setTimeout(() => socket.resume(), pauseMs);
    }
  });
}

/** Writes `data` in 64 KiB pieces with backpressure, then ends (or not). */
async function writeAll(socket: Socket, data: Buffer, end: boolean): Promise<void> {
  for (let at = 0; at < data.length; at += 65536) {
    if (!socket.write(data.subarray(at, at + 65536))) await new Promise((r) => socket.once('drain', r));
  }
  if (end) socket.end();
}

describe('meshauth-tcp/2 under backpressure', () => {
  it('ok/16 MiB each way at once, both app readers slow: every byte, in order, then clean ends', async () => {
    const up = randomBytes(16 * 1024 * 1024);
    const down = randomBytes(16 * 1024 * 1024);
    const atApp: Buffer[] = [];
    let appEnded = false;
    const app: TcpApp = await startTcpApp((socket) => {
      slowRead(socket, 2 * 1024 * 1024, 150, atApp);
      socket.on('end', () => {
        appEnded = true;
      });
      void writeAll(socket, down, true);
    });
    teardown.push(() => app.close());
    const p = await startTcpTunnelPair(ca, { appPort: app.port });
    teardown.push(() => p.close());
    const client = await rawClient(p.port, { allowHalfOpen: true });
    // rawClient collects in flowing mode; add a slow reader by pausing periodically.
    let since = 0;
    client.socket.on('data', (d: Buffer) => {
      since += d.length;
      if (since >= 2 * 1024 * 1024) {
        since = 0;
        client.socket.pause();
        setTimeout(() => client.socket.resume(), 150);
      }
    });
    await writeAll(client.socket, up, true);
    await client.ended;
    await until('app end', () => appEnded, 20_000);
    expect(sha(client.received())).toBe(sha(down));
    expect(sha(Buffer.concat(atApp))).toBe(sha(up));
    expect(await client.closed).toBeUndefined();
  }, 60_000);
});

describe('meshauth-tcp/2 half-close, the other direction still flowing', () => {
  it('ok/client FIN first, then the app streams 8 MiB and ends', async () => {
    const down = randomBytes(8 * 1024 * 1024);
    let got = '';
    const app = await startTcpApp((socket) => {
      socket.on('data', (d: Buffer) => {
        got += d.toString();
      });
      socket.on('end', () => void writeAll(socket, down, true));
    });
    teardown.push(() => app.close());
    const p = await startTcpTunnelPair(ca, { appPort: app.port });
    teardown.push(() => p.close());
    const client = await rawClient(p.port, { allowHalfOpen: true });
    client.socket.end('request');
    await client.ended;
    expect(got).toBe('request');
    expect(sha(client.received())).toBe(sha(down));
    expect(await client.closed).toBeUndefined();
  }, 30_000);

  it('ok/app FIN first, then the client streams 8 MiB and ends', async () => {
    const up = randomBytes(8 * 1024 * 1024);
    const atApp: Buffer[] = [];
    let appEnded = false;
    const app = await startTcpApp((socket) => {
      socket.end('banner');
      slowRead(socket, 1024 * 1024, 50, atApp);
      socket.on('end', () => {
        appEnded = true;
      });
    });
    teardown.push(() => app.close());
    const p = await startTcpTunnelPair(ca, { appPort: app.port });
    teardown.push(() => p.close());
    const client = await rawClient(p.port, { allowHalfOpen: true });
    await client.ended;
    expect(client.received().toString()).toBe('banner');
    await writeAll(client.socket, up, true);
    await until('app end', () => appEnded, 20_000);
    expect(sha(Buffer.concat(atApp))).toBe(sha(up));
    expect(await client.closed).toBeUndefined();
  }, 30_000);
});

describe('meshauth-tcp/2 early ends', () => {
  it('ok/an app (allowHalfOpen off) that answers and ends at once: the client gets the answer and a clean FIN', async () => {
    const server = createNetServer((socket) => {
      socket.on('error', () => undefined);
      socket.end('bye');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    teardown.push(() => new Promise<void>((r) => server.close(() => r())));
    const p = await startTcpTunnelPair(ca, { appPort: (server.address() as AddressInfo).port });
    teardown.push(() => p.close());
    const client = await rawClient(p.port);
    const error = await client.closed;
    expect(client.received().toString()).toBe('bye');
    expect(error).toBeUndefined();
  });

  it('ok/a client that sends and ends before the tunnel is up: the app gets every byte and a clean FIN', async () => {
    let got = '';
    let ended = false;
    const app = await startTcpApp((socket) => {
      socket.on('data', (d: Buffer) => {
        got += d.toString();
      });
      socket.on('end', () => {
        ended = true;
        socket.end('ok');
      });
    });
    teardown.push(() => app.close());
    const p = await startTcpTunnelPair(ca, { appPort: app.port });
    teardown.push(() => p.close());
    const client = await rawClient(p.port, { allowHalfOpen: true });
    client.socket.end('early');
    await until('app end', () => ended);
    expect(got).toBe('early');
    await client.ended;
    expect(client.received().toString()).toBe('ok');
  });

  it('ok/the idle timer does not fire while bytes flow one way only (app → client)', async () => {
    const app = await startTcpApp((socket) => {
      let n = 0;
      const t = setInterval(() => {
        if (socket.destroyed) return clearInterval(t);
        socket.write('.');
        if (++n === 15) {
          clearInterval(t);
          socket.end();
        }
      }, 50);
    });
    teardown.push(() => app.close());
    const p = await startTcpTunnelPair(ca, { appPort: app.port, limits: { idleTimeoutMs: 300 } });
    teardown.push(() => p.close());
    const client = await rawClient(p.port, { allowHalfOpen: true });
    await client.ended;
    expect(client.received().toString()).toBe('.'.repeat(15));
    client.socket.end();
    expect(await client.closed).toBeUndefined();
  });
});
