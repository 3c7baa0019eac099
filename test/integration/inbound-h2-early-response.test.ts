// An app that answers completely before the request body ended, on the mTLS inbound's HTTP/2: the response ends with
// END_STREAM and the stream is then closed with RST_STREAM(NO_ERROR), which asks the peer to stop sending the rest
// (RFC 9113 §8.1). It is not left half-open until the stream idle timeout resets it (INTERNAL_ERROR, counted
// stream_idle_timeout), and the app never takes the cut body for a complete one. A request whose body ended first is
// not reset. A raw HTTP/2 client shows the frames; node:http2's client reads the early answer as a complete one.
import { constants, connect as h2Connect } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logLines } from '../helpers/log-lines.js';
import { eachRequestHead, eventually, type RawApp } from '../helpers/raw-app.js';
import {
  h2Frame,
  type RawH2Client,
  type RawH2Frame,
  rawH2Client,
  rstCodeOf,
  statusOf,
} from '../helpers/raw-h2-client.js';
import { type HeldStage, startHeldStage, type TestSidecar } from '../helpers/sidecar-harness.js';
import type { TestCa, TestSvid } from '../helpers/test-ca.js';

const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const END_STREAM = 0x1;

describe('inbound h2: a response that ends before the request body closes the stream with RST_STREAM(NO_ERROR)', () => {
  let ca: TestCa;
  let app: RawApp;
  let b: TestSidecar;
  let peer: TestSvid;
  const log = logLines('b');

  let stage: HeldStage;

  beforeAll(async () => {
    // The app answers /early as soon as the head is in, before any of the body; /after-body once 1 byte of body
    // (its whole content-length) is in.
    const onAppData = eachRequestHead((c, path, head) => {
      const bodyIn = c.received.length > head.index + head[0].length;
      if (path === '/after-body' && !bodyIn) return false;
      c.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      return true;
    });
    // An idle stream is cut after 300 ms (startHeldStage); no path here is held in a stage.
    stage = await startHeldStage(log.logger, new Map(), onAppData);
    ({ ca, peer, app, b } = stage);
  });
  afterAll(async () => {
    await stage?.close();
  });

  function post(client: RawH2Client, id: number, path: string, length: number): void {
    client.headers(id, [
      [':method', 'POST'],
      [':scheme', 'https'],
      [':authority', 'b.mesh'],
      [':path', path],
      ['content-length', String(length)],
    ]);
  }

  const idleResets = () => stage.idleResets();

  async function rejected(): Promise<number> {
    return (await stage.rejected()).reduce((sum, [, count]) => sum + count, 0);
  }

  function completeResponse(frames: RawH2Frame[]): void {
    expect(frames.filter((f) => f.type === HEADERS).map(statusOf), 'one response head, 200').toEqual([200]);
    const body = Buffer.concat(frames.filter((f) => f.type === DATA).map((f) => f.payload)).toString();
    expect(body).toBe('ok');
    expect(
      frames.some((f) => f.type === DATA && (f.flags & END_STREAM) !== 0),
      'END_STREAM',
    ).toBe(true);
  }

  it('fail/an app answer complete before the body ended is followed by RST_STREAM(NO_ERROR), not an idle reset; the app sees a cut body', async () => {
    const [resetsBefore, rejectedBefore] = [await idleResets(), await rejected()];
    const client = await rawH2Client(b.sidecar.inboundPort, ca.bundlePem, peer);
    try {
      post(client, 1, '/early', 1_000);
      client.data(1, 'a');
      const closed = () => client.received.some((f) => f.stream === 1 && f.type === RST_STREAM);
      expect(await eventually(closed, 8_000), 'stream 1 closed by the sidecar').toBe(true);
      const frames = client.received.filter((f) => f.stream === 1);
      completeResponse(frames);
      expect(frames.filter((f) => f.type === RST_STREAM).map(rstCodeOf)).toEqual([constants.NGHTTP2_NO_ERROR]);
      expect(frames.at(-1)?.type, 'the reset after the whole response').toBe(RST_STREAM);
    } finally {
      client.close();
    }
    const atApp = app.connections.find((c) => c.received.includes('POST /early '));
    // The app's connection is not kept alive with a request body that never ended on it.
    expect(await eventually(() => atApp?.closed === true), 'the app connection closed').toBe(true);
    expect(
      atApp?.received.split('POST /early ')[1]?.split('\r\n\r\n')[1] ?? '',
      'never more body than arrived',
    ).toMatch(/^a?$/);
    expect(await idleResets()).toBe(resetsBefore);
    expect(await rejected()).toBe(rejectedBefore);
  });

  it('fail/an early answer the caller never takes is still reset when its stream idles out (INTERNAL_ERROR)', async () => {
    const client = await rawH2Client(b.sidecar.inboundPort, ca.bundlePem, peer);
    try {
      const zeroWindow = Buffer.alloc(6);
      zeroWindow.writeUInt16BE(0x4 /* SETTINGS_INITIAL_WINDOW_SIZE */, 0);
      client.socket.write(h2Frame(SETTINGS, 0, 0, zeroWindow));
      post(client, 1, '/early', 1_000);
      client.data(1, 'a');
      // The answer's head goes out; its body waits for a window that never opens, so the answer never finishes.
      const reset = () => client.received.find((f) => f.stream === 1 && f.type === RST_STREAM);
      expect(await eventually(() => reset() !== undefined, 8_000), 'stream 1 reset').toBe(true);
      const frame = reset();
      expect(frame === undefined ? undefined : rstCodeOf(frame)).toBe(constants.NGHTTP2_INTERNAL_ERROR);
    } finally {
      client.close();
    }
  });

  it('ok/a body that ended before the answer is not reset', async () => {
    const resetsBefore = await idleResets();
    const client = await rawH2Client(b.sidecar.inboundPort, ca.bundlePem, peer);
    try {
      post(client, 1, '/after-body', 1);
      client.data(1, 'a', true);
      const ended = () => client.received.some((f) => f.stream === 1 && (f.flags & END_STREAM) !== 0);
      expect(await eventually(ended, 5_000), 'stream 1 answered').toBe(true);
      // A later stream of the same connection answered: a reset of stream 1 sent with its answer would be in by then.
      post(client, 3, '/after-body', 1);
      client.data(3, 'a', true);
      const served = () => client.received.some((f) => f.stream === 3 && (f.flags & END_STREAM) !== 0);
      expect(await eventually(served, 5_000), 'stream 3 answered').toBe(true);
      const frames = client.received.filter((f) => f.stream === 1);
      completeResponse(frames);
      expect(frames.filter((f) => f.type === RST_STREAM)).toEqual([]);
    } finally {
      client.close();
    }
    expect(await idleResets()).toBe(resetsBefore);
  });

  it('ok/node:http2 reads the early answer as complete: 200, the body, a clean end (rstCode NO_ERROR)', async () => {
    const resetsBefore = await idleResets();
    const session = h2Connect(`https://127.0.0.1:${b.sidecar.inboundPort}`, {
      cert: peer.chainPem,
      key: peer.keyPem,
      ca: [ca.bundlePem],
      checkServerIdentity: () => undefined,
    });
    try {
      const req = session.request({ ':method': 'POST', ':path': '/early', 'content-length': '1000' });
      req.write('a');
      const outcome = await new Promise<{ status: unknown; body: string; rstCode: number | undefined }>(
        (resolve, reject) => {
          let status: unknown;
          let body = '';
          req.on('response', (headers) => {
            status = headers[':status'];
          });
          req.setEncoding('utf8');
          req.on('data', (chunk: string) => {
            body += chunk;
          });
          req.on('error', reject);
          req.on('close', () => resolve({ status, body, rstCode: req.rstCode }));
        },
      );
      expect(outcome).toEqual({ status: 200, body: 'ok', rstCode: constants.NGHTTP2_NO_ERROR });
    } finally {
      session.destroy();
    }
    expect(await idleResets()).toBe(resetsBefore);
  });
});
