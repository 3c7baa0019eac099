// An egress tunnel (CONNECT host:port to an `outbound.egress` entry) is a raw TCP relay, like the mesh tunnels
// (tcp-tunnel.ts), and must never hide a truncation (docs/outbound.md "Truncation is never hidden"): plain protocols
// go through egress too (`host:port` entries), where nothing but TCP tells a complete stream from a cut one.
// - a reset on one side reaches the other as a reset, not as a clean end (FIN) of a shorter stream or upload;
// - a clean half-close reaches the other side as one, direction by direction (allowHalfOpen on both sockets);
// - the drain deadline resets both sides;
// - a tunnel silent both ways for the TCP idle timeout is reset and counted, one where bytes flow is not.
// - past the TCP tunnels' maxConnections open tunnels a CONNECT is refused (503), counted and logged once.
//
// Every server here is on loopback, which egress refuses by design (a resolved loopback address is a 403
// egress_loopback). The test replaces only that check (egressAddressRefusal) so the tunnel can reach a loopback server;
// everything else — the matcher, the sockets — is the real code, and the lookup answers the upstream's name alone.
import { spawn } from 'node:child_process';
import { createServer as createTcpServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type LogLines, logLines } from '../helpers/log-lines.js';
import { startTestSidecar, type TestSidecar, testConfig } from '../helpers/sidecar-harness.js';
import { until } from '../helpers/tcp-client.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

// The upstream's name: config refuses loopback egress entries, so the test gives the upstream a name of its own
// that the outbound's lookup (and nothing else) resolves to 127.0.0.1.
const UPSTREAM_NAME = 'egress-upstream.test';

vi.mock('../../src/sidecar/outbound/egress-matcher.js', async (original) => ({
  ...(await original<typeof import('../../src/sidecar/outbound/egress-matcher.js')>()),
  egressAddressRefusal: () => undefined,
}));

vi.mock('node:dns', async (original) => {
  const dns = await original<typeof import('node:dns')>();
  const lookup = ((host: string, options: unknown, callback: (...args: unknown[]) => void) =>
    host === 'egress-upstream.test'
      ? callback(null, [{ address: '127.0.0.1', family: 4 }])
      : (dns.lookup as (...args: unknown[]) => void)(host, options, callback)) as typeof dns.lookup;
  return { ...dns, default: { ...dns, lookup }, lookup };
});

/** What the upstream saw of one connection. */
interface Seen {
  bytes: number;
  ended: boolean;
  error: string | undefined;
}

/** An upstream server on 127.0.0.1 and a sidecar whose egress allows it; `onSocket` plays the upstream's part. */
interface Egress {
  readonly sidecar: TestSidecar;
  readonly port: number;
  readonly sockets: Socket[];
  readonly seen: Seen[];
  close(): Promise<void>;
}

async function startEgress(
  ca: TestCa,
  onSocket: (socket: Socket, seen: Seen) => void = () => undefined,
  extra: Parameters<typeof startTestSidecar>[3] = {},
) {
  const sockets: Socket[] = [];
  const seen: Seen[] = [];
  const upstream: Server = createTcpServer({ allowHalfOpen: true }, (socket) => {
    const record: Seen = { bytes: 0, ended: false, error: undefined };
    seen.push(record);
    sockets.push(socket);
    socket.on('data', (d: Buffer) => {
      record.bytes += d.length;
    });
    socket.on('end', () => {
      record.ended = true;
    });
    socket.on('error', (e: Error & { code?: string }) => {
      record.error = e.code ?? e.message;
    });
    onSocket(socket, record);
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const port = (upstream.address() as { port: number }).port;
  const sidecar = await startTestSidecar(
    ca,
    ca.idFor('/ns/a/sa/a'),
    testConfig({ appPort: 1, egress: [`${UPSTREAM_NAME}:${port}`] }),
    extra,
  );
  const egress: Egress = {
    sidecar,
    port,
    sockets,
    seen,
    close: async () => {
      await sidecar.sidecar.close(0);
      for (const s of sockets) s.destroy();
      upstream.close();
    },
  };
  return egress;
}

interface Tunnel {
  readonly socket: Socket;
  /** The bytes received after the CONNECT answer. */
  received(): string;
  /** How the app's socket ended: a clean end and/or an error code. */
  readonly closed: Promise<{ ended: boolean; code: string | undefined }>;
  /** The same, as far as it has got. */
  state(): { ended: boolean; code: string | undefined };
}

/** A raw app connection through CONNECT; resolves once the tunnel is up (200 Connection Established). */
async function tunnel(egress: Egress, options: { allowHalfOpen?: boolean } = {}): Promise<Tunnel> {
  const socket = netConnect({
    host: '127.0.0.1',
    port: egress.sidecar.sidecar.outboundPort,
    allowHalfOpen: options.allowHalfOpen === true,
  });
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
  const closed = new Promise<{ ended: boolean; code: string | undefined }>((resolve) =>
    socket.once('close', () => resolve({ ended, code })),
  );
  const target = `${UPSTREAM_NAME}:${egress.port}`;
  socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  await until('200 Connection Established', () => text.includes('\r\n\r\n'));
  expect(text).toMatch(/^HTTP\/1\.1 200/);
  const headLength = text.indexOf('\r\n\r\n') + 4;
  return { socket, received: () => text.slice(headLength), closed, state: () => ({ ended, code }) };
}

describe('egress tunnel: resets pass through as resets', () => {
  let ca: TestCa;
  let egress: Egress;

  beforeAll(async () => {
    ca = await TestCa.create();
    egress = await startEgress(ca);
  });
  afterAll(async () => {
    await egress?.close();
  });

  it('fail/the upstream resets mid-stream: the app sees a reset, not a clean end', async () => {
    const before = egress.sockets.length;
    const client = await tunnel(egress);
    await until('upstream accepted', () => egress.sockets.length > before);
    const server = egress.sockets[egress.sockets.length - 1] as Socket;
    server.write('partial answer');
    await until('partial arrives', () => client.received() === 'partial answer');
    server.resetAndDestroy();
    const closed = await client.closed;
    // Nothing after the upstream's bytes: the tunnel is a byte stream, no error response belongs in it.
    expect(client.received()).toBe('partial answer');
    expect(closed, 'the app was told the stream ended cleanly').toEqual({ ended: false, code: 'ECONNRESET' });
  });

  it('fail/the app resets mid-upload: the upstream sees a reset, not a clean end', async () => {
    const before = egress.sockets.length;
    const client = await tunnel(egress);
    await until('upstream accepted', () => egress.sockets.length > before);
    const seen = egress.seen[egress.seen.length - 1] as Seen;
    client.socket.write('partial upload');
    await until('upload arrives', () => seen.bytes === 'partial upload'.length);
    client.socket.resetAndDestroy();
    // A reset shows as an error, a clean close as 'end' (and a tunnel left open times out here).
    await until('upstream saw the reset or an end', () => seen.ended || seen.error !== undefined);
    expect(seen, 'the upstream was told the upload ended cleanly').toMatchObject({ ended: false, error: 'ECONNRESET' });
  });

  it('ok/the upstream sends 8 MiB and closes at once, the app reads slowly: every byte arrives before the FIN', async () => {
    const size = 8 * 1024 * 1024;
    const before = egress.sockets.length;
    const client = await tunnel(egress);
    await until('upstream accepted', () => egress.sockets.length > before);
    // A slow reader: the sidecar's writes toward the app queue up behind it until the very end.
    client.socket.on('data', () => {
      client.socket.pause();
      setTimeout(() => client.socket.resume(), 2);
    });
    const server = egress.sockets[egress.sockets.length - 1] as Socket;
    server.end(Buffer.alloc(size, 0x61));
    const closed = await client.closed;
    expect(closed.ended, 'a clean end').toBe(true);
    expect(client.received().length, 'bytes before the clean end').toBe(size);
  }, 20_000);
});

describe('egress tunnel: a clean half-close passes through as one', () => {
  let ca: TestCa;
  let egress: Egress;

  beforeAll(async () => {
    ca = await TestCa.create();
    // Answers at the first bytes and half-closes (shutdown SHUT_WR), still reading the rest of the upload. Without
    // allowHalfOpen on the sidecar's upstream socket, Node ended our side too and the app's next bytes failed with a
    // self-made EPIPE, which was then passed on as a reset.
    egress = await startEgress(ca, (socket, seen) => {
      socket.on('data', () => {
        if (seen.bytes > 0 && !socket.writableEnded) socket.end('answer');
      });
    });
  });
  afterAll(async () => {
    await egress?.close();
  });

  it('fail/the upstream answers and half-closes while the app still uploads: a clean end for the app, the whole upload for the upstream', async () => {
    const client = await tunnel(egress, { allowHalfOpen: true });
    // The upload: 2 MiB in 16 KiB writes, one every millisecond (a fixed pace on purpose: an upload still going
    // while the upstream answers), then the app's own clean end.
    const chunk = Buffer.alloc(16 * 1024, 0x62);
    let sent = 0;
    while (sent < 2 * 1024 * 1024 && !client.socket.destroyed) {
      client.socket.write(chunk);
      sent += chunk.length;
      await new Promise((r) => setTimeout(r, 1));
    }
    client.socket.end();
    await Promise.race([client.closed, new Promise((r) => setTimeout(r, 3_000))]);
    expect(client.received()).toBe('answer');
    expect(client.state(), "the upstream's clean end reached the app as").toEqual({ ended: true, code: undefined });
    const seen = egress.seen[egress.seen.length - 1];
    await until('upstream saw the end of the upload', () => seen?.ended === true || seen?.error !== undefined);
    expect(seen).toEqual({ bytes: sent, ended: true, error: undefined });
  }, 20_000);
});

describe('egress tunnel cut at the drain deadline', () => {
  let ca: TestCa;
  let egress: Egress;

  beforeAll(async () => {
    ca = await TestCa.create();
    egress = await startEgress(ca, (socket) => socket.write('partial download'));
  });
  afterAll(async () => {
    await egress?.close();
  });

  it('fail/both the app and the upstream see a reset, not a clean end', async () => {
    const client = await tunnel(egress);
    await until('partial download', () => client.received().endsWith('partial download'));
    await egress.sidecar.sidecar.close(0);
    const closed = await client.closed;
    expect(closed, 'the app was told the download ended cleanly').toEqual({ ended: false, code: 'ECONNRESET' });
    const seen = egress.seen[egress.seen.length - 1];
    await until('upstream closed', () => seen?.ended === true || seen?.error !== undefined);
    expect(seen, 'the upstream was told the tunnel ended cleanly').toMatchObject({ ended: false, error: 'ECONNRESET' });
  }, 20_000);
});

describe("egress tunnel idle timeout (the TCP tunnels' idleTimeoutMs)", () => {
  const IDLE_MS = 300;
  let ca: TestCa;
  let egress: Egress;
  let log: LogLines;
  /** The upstream's part per test: what it does with a new connection. */
  let play: (socket: Socket) => void = () => undefined;

  beforeAll(async () => {
    ca = await TestCa.create();
    log = logLines('sidecar');
    egress = await startEgress(ca, (socket) => play(socket), {
      tcpLimits: { idleTimeoutMs: IDLE_MS },
      logger: log.logger,
    });
  });
  afterAll(async () => {
    await egress?.close();
  });

  const metric = async (line: string) =>
    (await egress.sidecar.metrics.registry.metrics()).split('\n').find((l) => l.startsWith(line));

  it('fail/a tunnel silent both ways is reset on both sides, counted and logged once', async () => {
    play = () => undefined;
    const before = egress.sockets.length;
    const client = await tunnel(egress);
    await until('upstream accepted', () => egress.sockets.length > before);
    const seen = egress.seen[egress.seen.length - 1] as Seen;
    client.socket.write('hello');
    await until('upload arrives', () => seen.bytes === 5);
    // Nothing more either way: the sidecar must let go of both sockets on its own.
    let closed = false;
    void client.closed.then(() => {
      closed = true;
    });
    await until('idle tunnel closed', () => closed, 20 * IDLE_MS);
    expect(await client.closed, 'the app was told the stream ended cleanly').toEqual({
      ended: false,
      code: 'ECONNRESET',
    });
    await until('upstream closed', () => seen.ended || seen.error !== undefined);
    expect(seen, 'the upstream was told the tunnel ended cleanly').toMatchObject({ ended: false, error: 'ECONNRESET' });
    await until('tunnel accounted', () => log.find({ msg: 'tcp tunnel ended', direction: 'egress' }).length > 0);
    expect(log.find({ msg: 'tcp tunnel ended', direction: 'egress' })).toMatchObject([
      { end: 'idle', protocol: 'tcp' },
    ]);
    expect(await metric('meshauth_tcp_connections_open{direction="egress"}')).toBe(
      'meshauth_tcp_connections_open{direction="egress"} 0',
    );
    expect(await metric('meshauth_tcp_connection_duration_seconds_count{direction="egress"}')).toBe(
      'meshauth_tcp_connection_duration_seconds_count{direction="egress"} 1',
    );
    expect(await metric('meshauth_tcp_connections_total{direction="egress"')).toBe(
      'meshauth_tcp_connections_total{direction="egress",peer_id="",result="established"} 1',
    );
  });

  // Bytes one way only, each gap a third of the timeout, the whole exchange several timeouts long: reads and writes
  // of the app's socket both count as activity.
  for (const [name, from] of [
    ['ok/bytes flowing only from the destination keep the tunnel open', 'upstream'],
    ['ok/bytes flowing only from the app keep the tunnel open', 'app'],
  ] as const) {
    it(name, async () => {
      const rounds = 12;
      const drip = (socket: Socket, done: () => void) => {
        let n = 0;
        const timer = setInterval(() => {
          if (socket.destroyed) return clearInterval(timer);
          socket.write('.');
          if (++n === rounds) {
            clearInterval(timer);
            done();
          }
        }, IDLE_MS / 3);
      };
      play = from === 'upstream' ? (socket) => drip(socket, () => socket.end()) : () => undefined;
      const before = egress.sockets.length;
      const client = await tunnel(egress, { allowHalfOpen: true });
      await until('upstream accepted', () => egress.sockets.length > before);
      const seen = egress.seen[egress.seen.length - 1] as Seen;
      const server = egress.sockets[egress.sockets.length - 1] as Socket;
      if (from === 'upstream') {
        await until('every byte from the destination', () => client.state().ended, 20 * IDLE_MS);
        expect(client.received()).toBe('.'.repeat(rounds));
      } else {
        drip(client.socket, () => client.socket.end());
        await until('every byte from the app', () => seen.ended, 20 * IDLE_MS);
        expect(seen.bytes).toBe(rounds);
      }
      expect(client.state().code, 'the tunnel was cut while bytes flowed').toBeUndefined();
      expect(seen.error, 'the tunnel was cut while bytes flowed').toBeUndefined();
      client.socket.end();
      server.end();
      await client.closed;
    });
  }
});

/** Sends `CONNECT` for the upstream and reads the answer: a refusal whole (the sidecar then closes), a 200 head alone. */
async function connectAnswer(egress: Egress): Promise<{ status: number; body: string }> {
  const socket = netConnect({ host: '127.0.0.1', port: egress.sidecar.sidecar.outboundPort });
  let text = '';
  let closed = false;
  socket.on('data', (d: Buffer) => {
    text += d.toString('latin1');
  });
  socket.on('error', () => undefined);
  socket.once('close', () => {
    closed = true;
  });
  const target = `${UPSTREAM_NAME}:${egress.port}`;
  socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  await until('the CONNECT answer', () => closed || text.startsWith('HTTP/1.1 200 '));
  socket.destroy();
  const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1] ?? 0);
  return { status, body: text.slice(text.indexOf('\r\n\r\n') + 4) };
}

describe("egress tunnel limit (the TCP tunnels' maxConnections)", () => {
  const MAX = 2;
  let ca: TestCa;
  let egress: Egress;
  let log: LogLines;

  beforeAll(async () => {
    ca = await TestCa.create();
    log = logLines('sidecar');
    egress = await startEgress(ca, (socket) => socket.pipe(socket), {
      tcpLimits: { maxConnections: MAX },
      logger: log.logger,
    });
  });
  afterAll(async () => {
    await egress?.close();
  });

  const metric = async (line: string) =>
    (await egress.sidecar.metrics.registry.metrics()).split('\n').find((l) => l.startsWith(line));

  it('fail/past maxConnections open tunnels a CONNECT is refused with a 503, counted and logged once; the open ones keep working', async () => {
    const open = [await tunnel(egress), await tunnel(egress)];
    await until('upstream accepted both', () => egress.sockets.length === MAX);
    const refused = await connectAnswer(egress);
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body)).toMatchObject({
      code: 'MESHAUTH_ERR_UPSTREAM_UNAVAILABLE',
      message: 'upstream unavailable',
    });
    expect(egress.sockets.length, 'the refused CONNECT reached the upstream').toBe(MAX);
    expect(await metric('meshauth_tcp_connections_total{direction="egress",peer_id="",result="limit"}')).toBe(
      'meshauth_tcp_connections_total{direction="egress",peer_id="",result="limit"} 1',
    );
    expect(await metric('meshauth_requests_rejected_total{direction="outbound"')).toBe(
      'meshauth_requests_rejected_total{direction="outbound",code="MESHAUTH_ERR_UPSTREAM_UNAVAILABLE"} 1',
    );
    expect(log.find({ reason: 'egress_limit' })).toMatchObject([
      {
        level: 'warn',
        direction: 'outbound',
        code: 'MESHAUTH_ERR_UPSTREAM_UNAVAILABLE',
        status: 503,
        host: UPSTREAM_NAME,
        limit: 'maxConnections',
        max: MAX,
      },
    ]);
    // The tunnels already open are untouched.
    for (const [i, t] of open.entries()) {
      t.socket.write(`ping ${i}`);
      await until(`echo ${i}`, () => t.received() === `ping ${i}`);
    }
    // A tunnel that closes frees its place for the next CONNECT.
    const first = open[0] as Tunnel;
    first.socket.end();
    await first.closed;
    // The place is free once both of its sockets have closed (the open gauge counts them down then).
    const openNow = 'meshauth_tcp_connections_open{direction="egress"}';
    await waitFor(`${openNow} 1`, async () => (await metric(openNow)) === `${openNow} 1`);
    const next = await tunnel(egress);
    next.socket.write('after');
    await until('echo after', () => next.received() === 'after');
    for (const t of [open[1] as Tunnel, next]) {
      t.socket.end();
      await t.closed;
    }
  });
});

describe('egress connect timeout', () => {
  let ca: TestCa;
  let log: LogLines;
  beforeAll(async () => {
    ca = await TestCa.create();
    log = logLines('sidecar');
  });

  it('fail/an upstream that never answers the SYN gets the CONNECT a 503 at the TCP connect timeout, and frees its place', async () => {
    // Found in review: the CONNECT waited for the kernel to give up (about two minutes), holding a tunnel place.
    // A listener whose accept queue is full drops further SYNs, as a black-holed address does: a child process
    // listens with a backlog of 1, then stops its event loop; the test fills the queue.
    const child = spawn(
      process.execPath,
      [
        '-e',
        `const s = require('node:net').createServer();
         s.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
           console.log(s.address().port);
           Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000);
         });`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const fillers: Socket[] = [];
    let sidecar: TestSidecar | undefined;
    try {
      const port = Number(await new Promise<string>((resolve) => child.stdout.once('data', (d) => resolve(String(d)))));
      // The kernel completes backlog + 1 connections into the queue of a listener that does not accept.
      let queued = 0;
      for (let i = 0; i < 2; i++) {
        const filler = netConnect({ host: '127.0.0.1', port }, () => queued++);
        filler.on('error', () => undefined);
        fillers.push(filler);
      }
      await until('a full accept queue', () => queued === 2);
      sidecar = await startTestSidecar(
        ca,
        ca.idFor('/ns/a/sa/a'),
        testConfig({ appPort: 1, egress: [`${UPSTREAM_NAME}:${port}`] }),
        { tcpLimits: { maxConnections: 1, connectTimeoutMs: 300 }, logger: log.logger },
      );
      const egress = { sidecar, port } as Egress;
      const first = await connectAnswer(egress);
      expect(first.status).toBe(503);
      expect(JSON.parse(first.body)).toMatchObject({ code: 'MESHAUTH_ERR_UPSTREAM_UNAVAILABLE' });
      // Its place is free again: the next CONNECT is not refused for the limit, it times out the same way.
      expect((await connectAnswer(egress)).status).toBe(503);
      expect(log.find({ reason: 'egress_limit' })).toEqual([]);
    } finally {
      await sidecar?.sidecar.close(0);
      for (const filler of fillers) filler.destroy();
      child.kill();
    }
  });
});
