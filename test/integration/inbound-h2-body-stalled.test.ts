// A request body that stops arriving on the mTLS inbound's HTTP/2 (a peer that sent HEADERS, then nothing: no DATA,
// no END_STREAM), cut at the stream idle timeout. With no response head out yet it is the peer's request that timed
// out: 408 MESHAUTH_ERR_REQUEST_TIMEOUT, reason body_stalled, as on the HTTP/1.1 paths, counted and logged as a
// rejection, whether the exchange was still in a stage or already streaming to the app (which sees a cut body).
// Once a response head went out only a reset is left: RST_STREAM(INTERNAL_ERROR), never END_STREAM (not CANCEL,
// which node:http2 clients take as a clean end; see H2Sink.idle). A wait on the sidecar's side (the peer's
// flow-control window used up) is not blamed on the peer. A raw HTTP/2 client shows the frames.
import { constants } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logLines } from '../helpers/log-lines.js';
import { eachRequestHead, eventually, type RawApp } from '../helpers/raw-app.js';
import { type RawH2Client, type RawH2Frame, rawH2Client, rstCodeOf, statusOf } from '../helpers/raw-h2-client.js';
import { type HeldStage, startHeldStage, type TestSidecar } from '../helpers/sidecar-harness.js';
import type { TestCa, TestSvid } from '../helpers/test-ca.js';

const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const END_STREAM = 0x1;
/** The initial flow-control window of a stream (RFC 9113 §6.9.2): what a peer may send before WINDOW_UPDATE. */
const INITIAL_WINDOW = 65_535;

describe('inbound h2: a request body that stalls is answered 408 before a response head, reset after', () => {
  let ca: TestCa;
  let app: RawApp;
  let b: TestSidecar;
  let peer: TestSvid;
  const log = logLines('b');
  /** Requests on these paths wait in the end-user stage until the test releases them. */
  const held = new Map<string, () => void>();

  let stage: HeldStage;

  beforeAll(async () => {
    // The app answers /ok at once and streams 100 KB of /streams-back as soon as the head is in; it never answers
    // anything else (it waits for bodies that never end). An idle exchange is cut after 1.2 s.
    const onAppData = eachRequestHead((c, path) => {
      if (path === '/ok') c.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      if (path === '/streams-back') {
        c.socket.write(`HTTP/1.1 200 OK\r\ncontent-length: 200000\r\n\r\n${'x'.repeat(100_000)}`);
      }
      return true;
    });
    stage = await startHeldStage(log.logger, held, onAppData);
    ({ ca, peer, app, b } = stage);
  });
  afterAll(async () => {
    await stage?.close();
  });

  /** Opens stream 1 with a POST announcing 1,000 bytes (or twice `body`) and sends `body`, then nothing. */
  async function stalledPost(path: string, body: Buffer | string = 'a'): Promise<RawH2Client> {
    const client = await rawH2Client(b.sidecar.inboundPort, ca.bundlePem, peer);
    client.headers(1, [
      [':method', 'POST'],
      [':scheme', 'https'],
      [':authority', 'b.mesh'],
      [':path', path],
      ['content-length', String(Math.max(1_000, 2 * body.length))],
    ]);
    for (let at = 0; at < body.length; at += 16_384) client.data(1, body.slice(at, at + 16_384));
    return client;
  }

  /** Stream 1's frames once the sidecar closed it (RST_STREAM), or ended its response and then reset it. */
  async function framesOnceClosed(client: RawH2Client): Promise<RawH2Frame[]> {
    const closed = () => client.received.some((f) => f.stream === 1 && f.type === RST_STREAM);
    expect(await eventually(closed, 8_000), 'stream 1 closed by the sidecar').toBe(true);
    return client.received.filter((f) => f.stream === 1);
  }

  const rejected = () => stage.rejected();
  const idleResets = () => stage.idleResets();

  /** A 408 with the JSON error and END_STREAM, then RST_STREAM(NO_ERROR): the rest of the body is not wanted. */
  function expect408(frames: RawH2Frame[]): void {
    const headers = frames.filter((f) => f.type === HEADERS);
    expect(headers.map(statusOf), 'one response head, 408').toEqual([408]);
    const body = Buffer.concat(frames.filter((f) => f.type === DATA).map((f) => f.payload)).toString();
    expect(JSON.parse(body)).toMatchObject({ code: 'MESHAUTH_ERR_REQUEST_TIMEOUT' });
    expect(
      frames.some((f) => f.type === DATA && (f.flags & END_STREAM) !== 0),
      'a complete response',
    ).toBe(true);
    expect(frames.filter((f) => f.type === RST_STREAM).map(rstCodeOf)).toEqual([constants.NGHTTP2_NO_ERROR]);
  }

  it('fail/a body that stalls while a stage holds the request is answered 408 body_stalled; the app never sees it, the stage ending later changes nothing', async () => {
    const client = await stalledPost('/held/stage');
    try {
      expect408(await framesOnceClosed(client));
      held.get('/held/stage')?.();
      // Served after the stage let go: the stage's continuation (a microtask) has run by then.
      const after = await rawH2Client(b.sidecar.inboundPort, ca.bundlePem, peer);
      after.headers(
        1,
        [
          [':method', 'GET'],
          [':scheme', 'https'],
          [':authority', 'b.mesh'],
          [':path', '/ok'],
        ],
        true,
      );
      const served = await eventually(() => after.received.some((f) => f.stream === 1 && f.type === HEADERS), 5_000);
      expect(served && statusOf(after.received.find((f) => f.type === HEADERS) as RawH2Frame)).toBe(200);
      after.close();
    } finally {
      client.close();
    }
    expect(app.connections.map((c) => c.received)).not.toContainEqual(expect.stringContaining('/held/stage'));
    expect(await rejected()).toEqual([['MESHAUTH_ERR_REQUEST_TIMEOUT', 1]]);
    expect(log.find({ code: 'MESHAUTH_ERR_REQUEST_TIMEOUT' })).toMatchObject([
      { direction: 'inbound', status: 408, reason: 'body_stalled', peer: peer.svid.id.toString() },
    ]);
    expect(await idleResets()).toBe(0);
  });

  it('fail/a body that stalls after the app hop began is answered 408 body_stalled; the app connection is cut with 1 of 1,000 bytes', async () => {
    const client = await stalledPost('/to-app');
    try {
      // The request as the app received it (its connection may have served another request before).
      const atApp = () => {
        const connection = app.connections.find((c) => c.received.includes('POST /to-app '));
        return connection && { closed: connection.closed, text: connection.received.split('POST /to-app ')[1] ?? '' };
      };
      expect(await eventually(() => atApp()?.text.endsWith('\r\n\r\na') === true), 'head and 1 byte at the app').toBe(
        true,
      );
      expect408(await framesOnceClosed(client));
      expect(await eventually(() => atApp()?.closed === true), 'the app connection closed').toBe(true);
      expect(atApp()?.text.split('\r\n\r\n')[1], 'never more of the body than arrived').toBe('a');
    } finally {
      client.close();
    }
    expect(await rejected()).toEqual([['MESHAUTH_ERR_REQUEST_TIMEOUT', 2]]);
    expect(log.find({ code: 'MESHAUTH_ERR_REQUEST_TIMEOUT', reason: 'body_stalled' })).toHaveLength(2);
    expect(await idleResets()).toBe(0);
  });

  it('fail/once a response head went out, a stalled exchange is reset with INTERNAL_ERROR, never END_STREAM, and counted as an idle stream', async () => {
    // The client sends no WINDOW_UPDATE: the response stalls at 64 KB as the request body did at 1 byte.
    const client = await stalledPost('/streams-back');
    try {
      const frames = await framesOnceClosed(client);
      expect(frames.filter((f) => f.type === HEADERS).map(statusOf)).toEqual([200]);
      expect(
        frames.some((f) => (f.flags & END_STREAM) !== 0 && f.type !== RST_STREAM),
        'no END_STREAM',
      ).toBe(false);
      expect(frames.filter((f) => f.type === RST_STREAM).map(rstCodeOf)).toEqual([constants.NGHTTP2_INTERNAL_ERROR]);
    } finally {
      client.close();
    }
    expect(await rejected()).toEqual([['MESHAUTH_ERR_REQUEST_TIMEOUT', 2]]);
    expect(await idleResets()).toBe(1);
  });

  it("fail/a body that waits on the sidecar (the peer's window used up while a stage holds it) is reset, not blamed on the peer with a 408", async () => {
    const client = await stalledPost('/held/window', Buffer.alloc(INITIAL_WINDOW, 'a'));
    try {
      const frames = await framesOnceClosed(client);
      expect(
        frames.filter((f) => f.type === HEADERS),
        'no response head',
      ).toEqual([]);
      expect(frames.filter((f) => f.type === RST_STREAM).map(rstCodeOf)).toEqual([constants.NGHTTP2_INTERNAL_ERROR]);
    } finally {
      held.get('/held/window')?.();
      client.close();
    }
    expect(await rejected()).toEqual([['MESHAUTH_ERR_REQUEST_TIMEOUT', 2]]);
    expect(await idleResets()).toBe(2);
  });
});
