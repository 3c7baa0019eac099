// An app that answers completely before the request body ended, on the mTLS inbound's HTTP/1.1 (the HTTP/2 form is
// inbound-h2-early-response): the connection cannot carry another request (the rest of the body would have to be
// read first), so it is closed once the answer is written (RFC 9112 §9.6), not kept until the keep-alive timeout.
// Nothing follows the complete answer on it: never a 408 when Node's request timeout sweeps the unfinished body, which
// a client would read as the answer to its next request. A request whose body ended first keeps its connection.
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logLines } from '../helpers/log-lines.js';
import { eachRequestHead, eventually } from '../helpers/raw-app.js';
import { rawTlsSocket } from '../helpers/raw-tls.js';
import { type HeldStage, startHeldStage } from '../helpers/sidecar-harness.js';

/** Far below the 65 s keep-alive timeout and the request timeouts: conditions, not times, are asserted. */
const CLOSE_MS = 8_000;

interface Caller {
  readonly socket: TLSSocket;
  /** What the caller read so far, latin1. */
  text(): string;
  /** Resolves once the connection closed: whether it closed with an error (a TCP reset, say). */
  readonly closed: Promise<boolean>;
}

/** The response heads (status lines) in what the caller read. */
function heads(text: string): string[] {
  return text.match(/HTTP\/1\.1 \d{3} [^\r]*/g) ?? [];
}

/** Whether `closed` settles within `ms` (a bounded wait on the close event). */
function closesWithin(closed: Promise<boolean>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  return Promise.race([closed.then(() => true), deadline]).finally(() => clearTimeout(timer));
}

/**
 * B in front of a raw app that answers `/early` 200 "ok" as soon as the head is in, closes the connection of
 * `/early-fail` as soon as the head is in (the sidecar answers), and answers `/after-body` once its byte is in.
 */
async function startEarlyStage(log: ReturnType<typeof logLines>, limits?: Record<string, number>): Promise<HeldStage> {
  const onAppData = eachRequestHead((c, path, head) => {
    const bodyIn = c.received.length > head.index + head[0].length;
    if (path === '/after-body' && !bodyIn) return false;
    if (path === '/early-fail') c.socket.destroy();
    else c.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    return true;
  });
  return startHeldStage(log.logger, new Map(), onAppData, limits);
}

async function connect(stage: HeldStage): Promise<Caller> {
  const socket = rawTlsSocket(stage.b.sidecar.inboundPort, stage.peer, stage.ca.bundlePem);
  let text = '';
  socket.on('data', (d: Buffer) => {
    text += d.toString('latin1');
  });
  const closed = new Promise<boolean>((resolve) => socket.once('close', resolve));
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
  return { socket, text: () => text, closed };
}

/** A POST announcing 1,000 bytes that sends 1, then nothing. */
async function stalledPost(stage: HeldStage, path: string): Promise<Caller> {
  const caller = await connect(stage);
  caller.socket.write(`POST ${path} HTTP/1.1\r\nHost: b.mesh\r\nContent-Length: 1000\r\n\r\na`);
  return caller;
}

/** `meshauth_connections_open{direction="inbound"}` on B. */
async function inboundOpen(stage: HeldStage): Promise<number> {
  const values = (await stage.b.metrics.connectionsOpen.get()).values;
  return values.find((v) => v.labels.direction === 'inbound')?.value ?? 0;
}

async function requestsWith(stage: HeldStage, code: number): Promise<number> {
  const values = (await stage.b.metrics.requests.get()).values;
  return values
    .filter((v) => v.labels.direction === 'inbound' && String(v.labels.code) === String(code))
    .reduce((sum, v) => sum + v.value, 0);
}

describe('inbound HTTP/1.1: an answer complete before the request body ended closes the connection', () => {
  let stage: HeldStage;
  const log = logLines('b');

  beforeAll(async () => {
    stage = await startEarlyStage(log);
  });
  afterAll(async () => {
    await stage?.close();
  });

  it('fail/the body stalls after an early complete 200: one complete response, then the connection closes', async () => {
    const caller = await stalledPost(stage, '/early');
    expect(await closesWithin(caller.closed, CLOSE_MS), 'closed well before the keep-alive timeout').toBe(true);
    expect(await caller.closed, 'a clean close').toBe(false);
    const text = caller.text();
    expect(heads(text)).toEqual(['HTTP/1.1 200 OK']);
    expect(text.endsWith('\r\n\r\nok'), 'the whole body, nothing after it').toBe(true);
    expect(await requestsWith(stage, 408)).toBe(0);
    expect(await stage.rejected()).toEqual([]);
    const appConnection = stage.app.connections.find((c) => c.received.includes('POST /early '));
    expect(appConnection?.received.split('\r\n\r\n')[1], 'never more of the body than arrived').toBe('a');
  });

  it('fail/the sidecar answers the app failure before the body ended: Connection: close, then the connection closes', async () => {
    const caller = await stalledPost(stage, '/early-fail');
    expect(await closesWithin(caller.closed, CLOSE_MS), 'closed well before the keep-alive timeout').toBe(true);
    const text = caller.text();
    expect(heads(text)).toEqual(['HTTP/1.1 503 Service Unavailable']);
    expect(text).toMatch(/\r\nconnection: close\r\n/i);
    expect(text.endsWith('}'), 'the whole JSON answer, nothing after it').toBe(true);
    expect(await requestsWith(stage, 408)).toBe(0);
    expect(await stage.rejected()).toEqual([['MESHAUTH_ERR_UPSTREAM_UNAVAILABLE', 1]]);
  });

  it('ok/a body that ended before the answer keeps the connection for the next request', async () => {
    const caller = await connect(stage);
    try {
      caller.socket.write('POST /after-body HTTP/1.1\r\nHost: b.mesh\r\nContent-Length: 1\r\n\r\na');
      expect(await eventually(() => caller.text().endsWith('\r\n\r\nok'), CLOSE_MS)).toBe(true);
      expect(caller.text()).not.toMatch(/connection: close/i);
      caller.socket.write('POST /after-body HTTP/1.1\r\nHost: b.mesh\r\nContent-Length: 1\r\n\r\nb');
      expect(await eventually(() => heads(caller.text()).length === 2, CLOSE_MS), 'a second answer').toBe(true);
      expect(heads(caller.text())).toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);
    } finally {
      caller.socket.destroy();
    }
  });
});

describe('inbound HTTP/1.1: no 408 after an early complete answer when the request timeout sweeps the stalled body', () => {
  let stage: HeldStage;
  const log = logLines('b');

  beforeAll(async () => {
    stage = await startEarlyStage(log, { requestTimeoutMs: 3_000, headersTimeoutMs: 1_000 });
  });
  afterAll(async () => {
    await stage?.close();
  });

  it('fail/the stalled body outlives requestTimeout: no 408 bytes follow the 200, none counted or rejected', async () => {
    const caller = await stalledPost(stage, '/early');
    // Past requestTimeout (3 s) the sweeper would have fired on a connection still open.
    expect(await closesWithin(caller.closed, CLOSE_MS), 'the connection closed').toBe(true);
    const text = caller.text();
    expect(text).not.toContain('408');
    expect(heads(text)).toEqual(['HTTP/1.1 200 OK']);
    expect(text.endsWith('\r\n\r\nok')).toBe(true);
    expect(await requestsWith(stage, 408)).toBe(0);
    expect(await requestsWith(stage, 200)).toBe(1);
    expect(await stage.rejected()).toEqual([]);
    expect(log.find({ code: 'MESHAUTH_ERR_REQUEST_TIMEOUT' })).toEqual([]);
  });
});

describe('inbound HTTP/1.1: a connection closing after an early answer is never answered again', () => {
  let stage: HeldStage;
  const log = logLines('b');

  beforeAll(async () => {
    // The request timeout (500 ms, swept every 200 ms) runs out while the connection lingers (up to 1 s).
    stage = await startEarlyStage(log, { requestTimeoutMs: 500, headersTimeoutMs: 200 });
  });
  afterAll(async () => {
    await stage?.close();
  });

  it('fail/a peer that keeps its side open past requestTimeout: no 408 written, nothing rejected', async () => {
    const caller = await connect(stage);
    // Our side open after the sidecar's FIN (tls.connect's typings lack allowHalfOpen), so the sidecar lingers.
    (caller.socket as TLSSocket & { allowHalfOpen: boolean }).allowHalfOpen = true;
    const ended = new Promise<void>((resolve) => caller.socket.once('end', resolve));
    caller.socket.write('POST /early HTTP/1.1\r\nHost: b.mesh\r\nContent-Length: 1000\r\n\r\na');
    expect(
      await closesWithin(
        ended.then(() => false),
        CLOSE_MS,
      ),
      'the sidecar ended its side',
    ).toBe(true);
    // Keep sending the body, a byte at a time (bounded: fewer than announced), until the sidecar drops the connection.
    let open = true;
    void caller.closed.then(() => {
      open = false;
    });
    for (let i = 0; open && i < 900; i++) {
      caller.socket.write('a');
      await closesWithin(caller.closed, 10);
    }
    expect(open, 'the sidecar closed the connection').toBe(false);
    const text = caller.text();
    expect(heads(text)).toEqual(['HTTP/1.1 200 OK']);
    expect(text.endsWith('\r\n\r\nok')).toBe(true);
    expect(await requestsWith(stage, 408)).toBe(0);
    expect(await stage.rejected()).toEqual([]);
    expect(log.find({ code: 'MESHAUTH_ERR_REQUEST_TIMEOUT' })).toEqual([]);
  });
});

/**
 * Sends `count` chunks of 100 bytes, one every `everyMs`, on a caller whose request announced more; stops early if the
 * connection closes. Resolves with how many were written while it was open.
 */
async function trickle(caller: Caller, count: number, everyMs: number): Promise<number> {
  let sent = 0;
  for (; sent < count; sent++) {
    if (await closesWithin(caller.closed, everyMs)) break;
    caller.socket.write('b'.repeat(100));
  }
  return sent;
}

// Each case waits out the 1 s linger after an upload of 3 s, and reads the connection gauge of its sidecar: each has a
// stage of its own, and the two run side by side.
describe.concurrent('inbound HTTP/1.1: the rest of an upload answered early is read and discarded while it flows', () => {
  // The linger is 1 s of silence: an upload still flowing after that must not draw a TCP reset (which can cost the
  // client the response it has not read yet), and the connection closes about 1 s after the upload stops.
  for (const [name, path, status] of [
    ['an early complete 200 from the app', '/early', 'HTTP/1.1 200 OK'],
    ['the sidecar answering the app failure (Connection: close)', '/early-fail', 'HTTP/1.1 503 Service Unavailable'],
  ] as const) {
    it(`fail/${name} while the upload flows for 3 s: no reset, closed once the upload stops`, async ({
      expect,
      onTestFinished,
    }) => {
      const stage = await startEarlyStage(logLines('b'));
      onTestFinished(() => stage.close());
      const caller = await connect(stage);
      // A client still uploading: our side stays open after the sidecar's FIN (tls.connect's typings lack allowHalfOpen).
      (caller.socket as TLSSocket & { allowHalfOpen: boolean }).allowHalfOpen = true;
      caller.socket.write(`POST ${path} HTTP/1.1\r\nHost: b.mesh\r\nContent-Length: 100000\r\n\r\na`);
      expect(await eventually(() => heads(caller.text()).length === 1, CLOSE_MS), 'the answer').toBe(true);
      try {
        const sent = await trickle(caller, 10, 300);
        expect(sent, 'the connection stayed open (no reset) while the upload flowed').toBe(10);
        // The caller does not end its side: the sidecar's close is seen on its connection gauge, within CLOSE_MS
        // (8 s), so by the 1 s linger after the upload stopped and not by the 30 s cap.
        expect(await eventually(async () => (await inboundOpen(stage)) === 0, CLOSE_MS), 'closed').toBe(true);
        expect(heads(caller.text())).toEqual([status]);
      } finally {
        caller.socket.destroy();
      }
    });
  }
});

describe('inbound HTTP/1.1: no request is started on a connection closing after an early answer', () => {
  let stage: HeldStage;
  const log = logLines('b');

  beforeAll(async () => {
    stage = await startEarlyStage(log);
  });
  afterAll(async () => {
    await stage?.close();
  });

  it('fail/a request pipelined after the rest of the early-answered body never reaches the app', async () => {
    const caller = await connect(stage);
    (caller.socket as TLSSocket & { allowHalfOpen: boolean }).allowHalfOpen = true;
    caller.socket.write('POST /early HTTP/1.1\r\nHost: b.mesh\r\nContent-Length: 5\r\n\r\na');
    expect(await eventually(() => heads(caller.text()).length === 1, CLOSE_MS), 'the answer').toBe(true);
    caller.socket.write('bcdePOST /second HTTP/1.1\r\nHost: b.mesh\r\nContent-Length: 1\r\n\r\nz');
    // Keep writing (bounded) until the sidecar drops the connection: a lingering one reads on.
    expect(await trickle(caller, 30, 100), 'the sidecar closed the connection').toBeLessThan(30);
    const second = () => stage.app.connections.some((c) => c.received.includes('/second'));
    expect(await eventually(second, 300), 'the app never saw it').toBe(false);
    expect(heads(caller.text())).toEqual(['HTTP/1.1 200 OK']);
    expect(await requestsWith(stage, 200)).toBe(1);
    expect(await stage.rejected()).toEqual([]);
  });
});
