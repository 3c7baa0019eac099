// A request body that stops arriving on the mTLS inbound's HTTP/1.1 after the app's response head already went out
// to the caller (inbound-h1-body-stalled covers the stall before the head). It is never answered 408: a head is out,
// so the response is cut (the connection closes before the Content-Length body is complete), never a second head. If
// the app stops mid-body too, the app's body timeout (inbound.appTimeout) cuts it first, counted
// app_response_truncated; if the app keeps sending and the caller stops reading, the write that waits on the caller
// is cut at the stream idle timeout (ForwardHandler's stall limit, which runs out before the socket's own idle timer
// would reach H1Sink.idle), counted stream_idle_timeout. Either way the app connection is closed with the 1 byte of
// body that arrived, and the peer's app slot is given back.
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logLines } from '../helpers/log-lines.js';
import { eachRequestHead, eventually } from '../helpers/raw-app.js';
import { rawTlsExchange, rawTlsSocket } from '../helpers/raw-tls.js';
import { type HeldStage, startHeldStage } from '../helpers/sidecar-harness.js';

/** Generous: the suite shares cores with other workers; conditions, not times, are asserted. */
const WAIT_MS = 10_000;
/** More than loopback socket buffers hold: a caller that stops reading leaves the sidecar's writes waiting. */
const BIG = 32_000_000;

describe('inbound HTTP/1.1: a request body that stalls after the response head went out is cut, never answered 408', () => {
  let stage: HeldStage;
  const log = logLines('b');

  beforeAll(async () => {
    // /half: a head announcing 200,000 bytes and 100,000 of them, then nothing. /big: a head announcing 2 × BIG
    // bytes and BIG of them, then nothing. /ok: a complete answer. None waits for the request body.
    const onAppData = eachRequestHead((c, path) => {
      if (path === '/ok') c.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      if (path === '/half') c.socket.write(`HTTP/1.1 200 OK\r\ncontent-length: 200000\r\n\r\n${'x'.repeat(100_000)}`);
      if (path === '/big') c.socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${2 * BIG}\r\n\r\n${'x'.repeat(BIG)}`);
      return true;
    });
    // appConnections 2: a peer's share is one app request in flight, so a slot kept by a cut exchange shows.
    // An idle exchange is cut after 1.2 s; the app's body timeout is 200 ms.
    stage = await startHeldStage(log.logger, new Map(), onAppData, { appConnections: 2 });
  });
  afterAll(async () => {
    await stage?.close();
  });

  interface Caller {
    readonly socket: TLSSocket;
    /** What the caller read so far, latin1. */
    text(): string;
    /** Resolves once the connection closed: whether it closed with an error (a TCP reset, say). */
    readonly closed: Promise<boolean>;
  }

  /** A POST announcing 1,000 bytes that sends 1, then nothing. */
  async function stalledPost(path: string): Promise<Caller> {
    const socket = rawTlsSocket(stage.b.sidecar.inboundPort, stage.peer, stage.ca.bundlePem);
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
    });
    const closed = new Promise<boolean>((resolve) => socket.once('close', resolve));
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
    socket.write(`POST ${path} HTTP/1.1\r\nHost: b.mesh\r\nContent-Length: 1000\r\n\r\na`);
    return { socket, text: () => text, closed };
  }

  /** The one response head the caller got (the status line), and how many body bytes followed it. */
  function response(text: string): { heads: string[]; bodyBytes: number } {
    const heads = text.match(/HTTP\/1\.1 \d{3} [^\r]*/g) ?? [];
    const at = text.indexOf('\r\n\r\n');
    return { heads, bodyBytes: at < 0 ? 0 : text.length - at - 4 };
  }

  /**
   * The request's body as the app received it, and whether the sidecar closed that app connection (it may have
   * served another request before).
   */
  function atApp(path: string) {
    const connection = stage.app.connections.find((c) => c.received.includes(`POST ${path} `));
    const request = connection?.received.split(`POST ${path} `)[1] ?? '';
    return connection && { closed: connection.closed, body: request.split('\r\n\r\n')[1] };
  }

  async function resets(reason: string): Promise<number> {
    const values = (await stage.b.metrics.streamsReset.get()).values;
    return values.find((v) => v.labels.direction === 'inbound' && v.labels.reason === reason)?.value ?? 0;
  }

  /** Two requests of the same peer in turn, each answered 200 by the app: no app slot of the peer is kept. */
  async function peerStillServed(): Promise<void> {
    for (let i = 0; i < 2; i++) {
      const reply = await rawTlsExchange(
        stage.b.sidecar.inboundPort,
        stage.peer,
        stage.ca.bundlePem,
        'GET /ok HTTP/1.1\r\nHost: b.mesh\r\nConnection: close\r\n\r\n',
      );
      expect(reply.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    }
  }

  it('fail/the app stops mid-body too: cut by the app body timeout (app_response_truncated), one 200 head and no 408, the app slot given back', async () => {
    const [truncatedBefore, idleBefore] = [await resets('app_response_truncated'), await resets('stream_idle_timeout')];
    const caller = await stalledPost('/half');
    const hadError = await caller.closed;
    expect(response(caller.text())).toEqual({ heads: ['HTTP/1.1 200 OK'], bodyBytes: 100_000 });
    expect(hadError, 'a clean close: the short Content-Length body shows the cut').toBe(false);
    expect(await eventually(() => atApp('/half')?.closed === true, WAIT_MS), 'the app connection closed').toBe(true);
    expect(atApp('/half')?.body, 'never more of the body than arrived').toBe('a');
    expect(await resets('app_response_truncated')).toBe(truncatedBefore + 1);
    expect(await resets('stream_idle_timeout')).toBe(idleBefore);
    expect(await stage.rejected()).toEqual([]);
    expect(log.find({ reason: 'app_response_truncated' })).toMatchObject([
      { direction: 'inbound', peer: stage.peer.svid.id.toString(), cause: 'UND_ERR_BODY_TIMEOUT: Body Timeout Error' },
    ]);
    await peerStillServed();
  });

  it('fail/the caller stops reading while its body stalls: cut at the stream idle timeout (stream_idle_timeout), one 200 head and no 408', async () => {
    const [truncatedBefore, idleBefore] = [await resets('app_response_truncated'), await resets('stream_idle_timeout')];
    const caller = await stalledPost('/big');
    // Read the head, then stop reading: the app keeps sending, the sidecar's writes wait on the caller.
    expect(await eventually(() => caller.text().includes('\r\n\r\n'), WAIT_MS), 'the response head').toBe(true);
    caller.socket.pause();
    try {
      expect(await eventually(async () => (await resets('stream_idle_timeout')) > idleBefore, WAIT_MS)).toBe(true);
    } finally {
      caller.socket.resume();
    }
    const hadError = await caller.closed;
    const { heads, bodyBytes } = response(caller.text());
    expect(heads).toEqual(['HTTP/1.1 200 OK']);
    expect(bodyBytes, 'the response cut short of its Content-Length').toBeLessThan(2 * BIG);
    expect(hadError).toBe(false);
    expect(await eventually(() => atApp('/big')?.closed === true, WAIT_MS), 'the app connection closed').toBe(true);
    expect(atApp('/big')?.body).toBe('a');
    expect(await resets('stream_idle_timeout')).toBe(idleBefore + 1);
    expect(await resets('app_response_truncated')).toBe(truncatedBefore);
    expect(await stage.rejected()).toEqual([]);
    expect(log.find({ event: 'stream_idle_timeout' })).toMatchObject([
      { direction: 'inbound', reason: 'stream_idle_timeout', msg: 'idle exchange reset' },
    ]);
    await peerStillServed();
  });
});
