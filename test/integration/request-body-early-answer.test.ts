// closeAfterEarlyResponse (src/sidecar/inbound/request-body.ts) on a real node:http2 server stream whose request body
// is piped to a consumer that never reads it, so the body backs up in the stream: after an answer complete before the
// body was taken, the stream must be destroyed ('close'), whether the caller is still sending (RST_STREAM(NO_ERROR)
// asks it to stop) or already sent END_STREAM (nothing to reset; the buffered rest is dropped). A paused stream with
// data left never ends, and node:http2 destroys a closed stream only once its readable side has ended.
import {
  type ClientHttp2Session,
  connect,
  constants,
  createServer,
  type Http2Server,
  type ServerHttp2Stream,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeAfterEarlyResponse, h2RequestBody } from '../../src/sidecar/inbound/request-body.js';
import { eventually } from '../helpers/wait.js';

const CHUNK = Buffer.alloc(16 * 1024, 0x61);
// More than the body's PassThrough holds on either Node line (16 KiB buffers on Node 20, 64 KiB on Node 24); the
// server's windows are opened wide enough for all of it to arrive.
const CHUNKS = 16;
const WINDOW = 4 * 1024 * 1024;

describe('closeAfterEarlyResponse: a backed-up request body does not keep its stream', () => {
  let server: Http2Server;
  let url: string;
  const clients: ClientHttp2Session[] = [];
  const streams: ServerHttp2Stream[] = [];

  beforeAll(async () => {
    server = createServer({ settings: { initialWindowSize: WINDOW } });
    server.on('session', (session) => session.setLocalWindowSize(WINDOW));
    server.on('stream', (stream) => {
      stream.on('error', () => undefined);
      h2RequestBody(stream); // piped to a PassThrough nobody reads: the rest backs up in the stream
      streams.push(stream);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const client of clients) client.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /**
   * Sends CHUNKS × 16 KiB (and END_STREAM when `whole`) on a session of its own (a backed-up stream holds its session's
   * flow-control window); resolves with the server's stream once they are in.
   */
  async function upload(whole: boolean): Promise<{ stream: ServerHttp2Stream; rstCode: () => number | undefined }> {
    const client = connect(url);
    client.on('error', () => undefined);
    clients.push(client);
    const before = streams.length;
    const length = whole ? CHUNKS * CHUNK.length : 1_000_000;
    const req = client.request({ ':method': 'POST', ':path': '/', 'content-length': String(length) });
    req.on('error', () => undefined);
    req.resume();
    let closedWith: number | undefined;
    req.on('close', () => {
      closedWith = req.rstCode;
    });
    for (let i = 0; i < CHUNKS; i++) req.write(CHUNK);
    if (whole) req.end();
    expect(await eventually(() => streams.length > before)).toBe(true);
    const stream = streams[before] as ServerHttp2Stream;
    const arrived = () => stream.readableLength > 0 && (!whole || stream.state.remoteClose !== 0);
    expect(await eventually(arrived), 'the body backed up in the stream').toBe(true);
    return { stream, rstCode: () => closedWith };
  }

  function answerEarly(stream: ServerHttp2Stream): Promise<boolean> {
    let closed = false;
    stream.once('close', () => {
      closed = true;
    });
    stream.respond({ ':status': 200, 'content-length': 2 });
    stream.end('ok');
    closeAfterEarlyResponse(stream);
    return eventually(() => closed, 5_000);
  }

  it('fail/the caller still sending: RST_STREAM(NO_ERROR) after the answer, and the stream is destroyed', async () => {
    const { stream, rstCode } = await upload(false);
    expect(await answerEarly(stream), "the server stream's 'close'").toBe(true);
    expect(await eventually(() => rstCode() !== undefined)).toBe(true);
    expect(rstCode()).toBe(constants.NGHTTP2_NO_ERROR);
  });

  it('fail/the caller already sent END_STREAM, the rest still buffered: the stream is destroyed', async () => {
    const { stream } = await upload(true);
    expect(await answerEarly(stream), "the server stream's 'close'").toBe(true);
  });
});
