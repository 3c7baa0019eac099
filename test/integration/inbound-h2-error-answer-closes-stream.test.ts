// An error answer the inbound writes itself on HTTP/2 while the caller's request body is still coming (the app's
// answer unusable or late, a stage refusing the request): the answer ends with END_STREAM and the stream is then
// closed with RST_STREAM(NO_ERROR), asking the caller to stop sending, as after an app's early answer
// (inbound-h2-early-response.test.ts). It is not left half-open until the stream idle timeout resets it with
// INTERNAL_ERROR, which a client reads as a failed request. An answer the caller never takes is still reset.
import { constants } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MeshauthError } from '../../src/errors/index.js';
import type { EndUserOutcome } from '../../src/sidecar/index.js';
import { eachRequestHead, eventually, type RawApp } from '../helpers/raw-app.js';
import {
  h2Frame,
  pingUntilReset,
  type RawH2Frame,
  rawH2Client,
  realUntil,
  rstCodeOf,
} from '../helpers/raw-h2-client.js';
import { type RawAppBehind, startRawAppBehind, type TestSidecar } from '../helpers/sidecar-harness.js';
import type { TestCa, TestSvid } from '../helpers/test-ca.js';

const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const END_STREAM = 0x1;

describe('inbound h2: an error answer before the request body ended closes the stream with RST_STREAM(NO_ERROR)', () => {
  let setup: RawAppBehind;
  let ca: TestCa;
  let peer: TestSvid;
  let app: RawApp;
  let b: TestSidecar;

  beforeAll(async () => {
    const refused = (view: { readonly target: string }): EndUserOutcome =>
      view.target === '/refused'
        ? { reject: new MeshauthError('MESHAUTH_ERR_TOKEN_MISSING', 'no token', { reason: 'missing' }) }
        : view.target === '/refused-with-header'
          ? {
              reject: new MeshauthError('MESHAUTH_ERR_TOKEN_MISSING', 'no token', { reason: 'missing' }),
              rejectHeaders: { 'www-authenticate': 'Bearer' },
            }
          : {};
    setup = await startRawAppBehind({
      // /garbage gets bytes that are no HTTP answer (502); /closed, a connection closed without an answer (503).
      onAppData: eachRequestHead((c, path) => {
        if (path === '/garbage') c.socket.write('NOT HTTP\r\n\r\n');
        if (path === '/closed') c.socket.destroy();
        return true;
      }),
      appTimeout: '300ms',
      // Long enough that an idle reset cannot come first: without the close, the stream stays half-open this long.
      inboundLimits: { streamIdleTimeoutMs: 20_000 },
      hooks: { authenticateEndUser: (view) => Promise.resolve(refused(view)) },
    });
    ({ ca, peer, app, b } = setup);
  });
  afterAll(async () => {
    await setup?.close();
  });

  const idleResets = () => setup.idleResets();

  /** POSTs `path` with a content-length of 1,000 and one byte of it; resolves with stream 1's frames once reset. */
  async function postOneByte(path: string): Promise<RawH2Frame[]> {
    const client = await rawH2Client(b.sidecar.inboundPort, ca.bundlePem, peer);
    try {
      client.headers(1, [
        [':method', 'POST'],
        [':scheme', 'https'],
        [':authority', 'b.mesh'],
        [':path', path],
        ['content-length', '1000'],
      ]);
      client.data(1, 'a');
      const reset = () => client.received.some((f) => f.stream === 1 && f.type === RST_STREAM);
      expect(await eventually(reset, 10_000), 'stream 1 closed by the sidecar').toBe(true);
      return client.received.filter((f) => f.stream === 1);
    } finally {
      client.close();
    }
  }

  function expectWholeErrorThenNoError(frames: RawH2Frame[], code: string): void {
    expect(frames.filter((f) => f.type === HEADERS)).toHaveLength(1);
    const body = Buffer.concat(frames.filter((f) => f.type === DATA).map((f) => f.payload)).toString();
    expect(JSON.parse(body)).toMatchObject({ code });
    expect(
      frames.some((f) => f.type === DATA && (f.flags & END_STREAM) !== 0),
      'END_STREAM',
    ).toBe(true);
    expect(frames.filter((f) => f.type === RST_STREAM).map(rstCodeOf)).toEqual([constants.NGHTTP2_NO_ERROR]);
    expect(frames.at(-1)?.type, 'the reset after the whole answer').toBe(RST_STREAM);
  }

  it('fail/an unusable app answer: 502, then RST_STREAM(NO_ERROR); the app never gets more than arrived', async () => {
    const before = await idleResets();
    expectWholeErrorThenNoError(await postOneByte('/garbage'), 'MESHAUTH_ERR_UPSTREAM_PROTOCOL');
    const atApp = app.connections.find((c) => c.received.includes('POST /garbage '));
    expect(atApp?.received.split('\r\n\r\n')[1] ?? '', 'never more body than arrived').toMatch(/^a?$/);
    expect(await idleResets()).toBe(before);
  });

  it('fail/an app connection closed without an answer: 503, then RST_STREAM(NO_ERROR)', async () => {
    const before = await idleResets();
    expectWholeErrorThenNoError(await postOneByte('/closed'), 'MESHAUTH_ERR_UPSTREAM_UNAVAILABLE');
    expect(await idleResets()).toBe(before);
  });

  it('ok/a stage refusing the request: 401, then RST_STREAM(NO_ERROR), with or without extra headers', async () => {
    const before = await idleResets();
    expectWholeErrorThenNoError(await postOneByte('/refused'), 'MESHAUTH_ERR_TOKEN_MISSING');
    expectWholeErrorThenNoError(await postOneByte('/refused-with-header'), 'MESHAUTH_ERR_TOKEN_MISSING');
    expect(
      app.connections.some((c) => c.received.includes('/refused')),
      'never sent to the app',
    ).toBe(false);
    expect(await idleResets()).toBe(before);
  });

  it('fail/an error answer the caller never takes, its body still coming, is still reset (INTERNAL_ERROR)', async () => {
    const client = await rawH2Client(b.sidecar.inboundPort, ca.bundlePem, peer);
    try {
      const zeroWindow = Buffer.alloc(6);
      zeroWindow.writeUInt16BE(0x4 /* SETTINGS_INITIAL_WINDOW_SIZE */, 0);
      client.socket.write(h2Frame(SETTINGS, 0, 0, zeroWindow));
      const head = () => client.received.some((f) => f.stream === 1 && f.type === HEADERS);
      const reset = () => client.received.find((f) => f.stream === 1 && f.type === RST_STREAM);
      // The answer deadline (10 s) is a setTimeout armed as the answer is written: faked from before the request and
      // driven a second at a time for up to 25 s, not waited out (untakenAnswerReset does the same).
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      try {
        client.headers(1, [
          [':method', 'POST'],
          [':scheme', 'https'],
          [':authority', 'b.mesh'],
          [':path', '/refused'],
          ['content-length', '1000'],
        ]);
        client.data(1, 'a');
        expect(await realUntil(head, 5_000), 'the answer head').toBe(true);
        // Only the answer deadline can end the stream: the session is kept busy (pingUntilReset).
        await pingUntilReset(client, 1);
      } finally {
        vi.useRealTimers();
      }
      // A reset sent in the last step may still be on its way (real time); the fake clock has stopped.
      expect(await eventually(() => reset() !== undefined, 5_000), 'stream 1 reset').toBe(true);
      const frame = reset();
      expect(frame === undefined ? undefined : rstCodeOf(frame)).toBe(constants.NGHTTP2_INTERNAL_ERROR);
      expect(
        client.received.some((f) => f.stream === 1 && f.type === DATA),
        'no body went out: the window stayed shut',
      ).toBe(false);
    } finally {
      client.close();
    }
  });
});
