// HTTP/2 abuse and slow clients at the gateway's public listener (public-listener.ts, PUBLIC_LIMITS), found by an
// outside audit (2026-12-02; each case failed before its fix): the process stays up and keeps serving, nghttp2 ends
// a rapid-reset or CONTINUATION flood with GOAWAY and a PING flood by closing, and every connection a limit closes is
// counted (meshauth_connections_rejected_total{direction="edge"}) with a rate-limited warn line. An h2 session
// without a request and an HTTP/1.1 head trickled byte by byte are closed after 10 s, as the inbound sidecar does (the
// per-address share: gateway-public-listener-share.test.ts).
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type BadMesh, gatewayH1Socket, h1Exchange, startBadMesh } from '../helpers/gateway-bad-service.js';
import { driveFakeClock } from '../helpers/raw-h2-client.js';
import { eventually } from '../helpers/wait.js';

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

function hpack(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  const str = (s: string) => {
    const b = Buffer.from(s, 'latin1');
    if (b.length >= 127) throw new Error('short strings only');
    return Buffer.concat([Buffer.from([b.length]), b]);
  };
  return Buffer.concat(fields.flatMap(([n, v]) => [Buffer.from([0]), str(n), str(v)]));
}

interface Conn {
  readonly socket: TLSSocket;
  readonly goaways: number[];
  closed(): boolean;
}

async function h2Conn(port: number, ca: string): Promise<Conn> {
  const socket = tlsConnect({ host: '127.0.0.1', port, ca: [ca], ALPNProtocols: ['h2'], servername: 'localhost' });
  const goaways: number[] = [];
  let closed = false;
  let buf = Buffer.alloc(0);
  socket.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    for (let guard = 0; guard < 100_000 && buf.length >= 9; guard++) {
      const len = buf.readUIntBE(0, 3);
      if (buf.length < 9 + len) break;
      if (buf[3] === 0x7) goaways.push(buf.readUInt32BE(9 + 4));
      buf = buf.subarray(9 + len);
    }
  });
  socket.on('error', () => undefined);
  socket.on('close', () => {
    closed = true;
  });
  await new Promise((resolve) => socket.once('secureConnect', resolve));
  socket.write(
    Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), frame(0x4, 0, 0, Buffer.alloc(0))]),
  );
  return { socket, goaways, closed: () => closed };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('gateway: HTTP/2 abuse and slow clients', () => {
  let m: BadMesh;
  beforeAll(async () => {
    m = await startBadMesh();
  });
  afterAll(async () => {
    await m?.close();
  });

  const get = (path: string) =>
    hpack([
      [':method', 'GET'],
      [':scheme', 'https'],
      [':authority', `127.0.0.1:${m.port}`],
      [':path', path],
    ]);

  it('fail/rapid reset, CONTINUATION and PING floods: the gateway survives, counts and logs them', async () => {
    const logsBefore = m.mesh.log.lines.length;
    const seenBefore = m.badApp.seen.length;
    // Rapid reset: HEADERS + RST_STREAM(CANCEL), 20 000 streams at most.
    const rapid = await h2Conn(m.port, m.mesh.files.caPem);
    const cancel = Buffer.alloc(4);
    cancel.writeUInt32BE(8);
    for (let id = 1, batch: Buffer[] = []; id < 40_000 && !rapid.closed() && rapid.goaways.length === 0; id += 2) {
      batch.push(frame(0x1, 0x4, id, get('/bad/echo')), frame(0x3, 0, id, cancel));
      if (batch.length >= 200) {
        rapid.socket.write(Buffer.concat(batch.splice(0)));
        await tick();
      }
    }
    // CONTINUATION flood: HEADERS without END_HEADERS, then CONTINUATION frames (20 000 at most).
    const cont = await h2Conn(m.port, m.mesh.files.caPem);
    cont.socket.write(frame(0x1, 0, 1, get('/bad/echo')));
    const filler = frame(0x9, 0, 1, hpack([['x-a', 'b'.repeat(100)]]));
    for (let i = 0; i < 20_000 && !cont.closed(); i++) {
      cont.socket.write(filler);
      if (i % 500 === 0) await tick();
    }
    // PING flood (100 000 at most), never reading the ACKs back quickly enough.
    const ping = await h2Conn(m.port, m.mesh.files.caPem);
    const p = frame(0x6, 0, 0, Buffer.alloc(8));
    for (let i = 0; i < 100_000 && !ping.closed(); i++) {
      ping.socket.write(p);
      if (i % 1000 === 0) await tick();
    }
    // The server ends the attackers (the expectations below say which did not).
    await eventually(() => ping.closed() && rapid.goaways.length + cont.goaways.length > 0, 5_000);
    for (const c of [rapid, cont, ping]) c.socket.destroy();

    // What holds: each attacker connection was ended by the server, nothing reached the service, and the gateway
    // still answers.
    expect(rapid.goaways.length + cont.goaways.length).toBeGreaterThan(0);
    expect(ping.closed()).toBe(true);
    const after = await h1Exchange(
      m.port,
      m.mesh.files.caPem,
      'GET /bad/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n',
      3_000,
    );
    expect(after.text.startsWith('HTTP/1.1 200')).toBe(true);
    // Only that request reached the service: a flood request forwarded would have come before it.
    expect(m.badApp.seen.length).toBe(seenBefore + 1);

    // An operator sees it: counted by reason, and one warn line (rate-limited).
    const counted = (await m.mesh.metrics.connectionsRejected.get()).values.filter(
      (v) => v.labels.direction === 'edge' && String(v.labels.reason).startsWith('h2_') && v.value > 0,
    );
    expect(counted.length).toBeGreaterThan(0);
    const logged = m.mesh.log.lines
      .slice(logsBefore)
      .filter((l) => l.event === 'gateway_connection_closed' && String(l.reason).startsWith('h2_'));
    expect(logged.length).toBeGreaterThan(0);
  });

  it('fail/an h2 connection that never sends a request and an HTTP/1.1 head trickled byte by byte are closed after 10 s', async () => {
    // Both deadlines (PUBLIC_LIMITS.headersTimeoutMs, 10 s, the gateway's default) are setTimeouts armed as each
    // connection arrives: faked from before the two connect, and the slowloris's pace is kept on the fake clock, not
    // waited out. node:http's own head timeouts are not faked: in the moment of real time this takes, none of them
    // can be what closes either connection.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let idle: Conn | undefined;
    let slow: TLSSocket | undefined;
    let slowClosed = false;
    let slowAnswer = '';
    try {
      idle = await h2Conn(m.port, m.mesh.files.caPem);
      slow = gatewayH1Socket(m.port, m.mesh.files.caPem);
      slow.on('error', () => undefined);
      slow.on('data', (c: Buffer) => {
        slowAnswer += c.toString('latin1');
      });
      slow.on('close', () => {
        slowClosed = true;
      });
      await new Promise((resolve) => slow?.once('secureConnect', resolve));
      slow.write('GET /bad/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
      const conn = idle;
      const client = slow;
      // A fixed pace on purpose: a slowloris client, one header byte a second (of the fake clock), for 12 s at most.
      await driveFakeClock(
        () => slowClosed && conn.closed(),
        12_000,
        1_000,
        () => client.write('a'),
      );
    } finally {
      vi.useRealTimers();
    }
    try {
      // A close in the last step may still be on its way (real time); the fake clock has stopped.
      await eventually(() => slowClosed && idle?.closed() === true, 2_000);
      // Both closed by ~10 s (the inbound sidecar's headersTimeout and first-request timer), a 408 for the head.
      expect({ idleClosed: idle?.closed(), slowClosed, slowAnswer: slowAnswer.split('\r\n')[0] }).toEqual({
        idleClosed: true,
        slowClosed: true,
        slowAnswer: 'HTTP/1.1 408 Request Timeout',
      });
    } finally {
      idle?.socket.destroy();
      slow?.destroy();
    }
  });
});
