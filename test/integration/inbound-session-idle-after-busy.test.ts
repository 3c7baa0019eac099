// The inbound closes an HTTP/2 session that carries no stream for sessionIdleTimeout (GOAWAY, counted
// `meshauth_connections_rejected_total{reason="idle"}`), also when the timer first ran out with a stream in flight
// (node:http2 calls setTimeout's callback once only), and also after an early answer to a request whose body had
// backed up in the sidecar: that body is dropped and the stream closes, so it no longer counts as in flight.
import type { ClientHttp2Session } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eachRequestHead, eventually, mtlsH2Session } from '../helpers/raw-app.js';
import { type RawAppBehind, startRawAppBehind, type TestSidecar } from '../helpers/sidecar-harness.js';
import type { TestCa, TestSvid } from '../helpers/test-ca.js';

const SESSION_IDLE_MS = 1_000;
const APP_ANSWERS_AFTER_MS = 1_500;

describe('inbound h2: a session idles out after a stream that outlived the first idle expiry', () => {
  let setup: RawAppBehind;
  let ca: TestCa;
  let peer: TestSvid;
  let b: TestSidecar;

  beforeAll(async () => {
    setup = await startRawAppBehind({
      // The app stops reading at the request head (a body backs up into the sidecar), answers a whole 200 later and
      // never reads again (a connection answered before its request's end is the sidecar's to close).
      onAppData: eachRequestHead((c) => {
        c.socket.pause();
        setTimeout(() => c.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'), APP_ANSWERS_AFTER_MS);
        return true;
      }),
      appTimeout: '20s',
      inboundLimits: { streamIdleTimeoutMs: 60_000, sessionIdleTimeoutMs: SESSION_IDLE_MS },
    });
    ({ ca, peer, b } = setup);
  });
  afterAll(async () => {
    await setup?.close();
  });

  async function idleClosed(): Promise<number> {
    const values = (await b.metrics.connectionsRejected.get()).values;
    return values.find((v) => v.labels.direction === 'inbound' && v.labels.reason === 'idle')?.value ?? 0;
  }

  /** POSTs `bytes` of a body of `length` on a new session; resolves with the status and a GOAWAY probe. */
  async function post(bytes: number, length: number): Promise<{ status: unknown; goaway: () => boolean }> {
    const session: ClientHttp2Session = await mtlsH2Session(b.sidecar.inboundPort, peer, ca.bundlePem);
    let goaway = false;
    session.on('goaway', () => {
      goaway = true;
    });
    session.on('error', () => undefined);
    const req = session.request({ ':method': 'POST', ':path': '/upload', 'content-length': String(length) });
    req.on('error', () => undefined);
    const status = new Promise<unknown>((resolve) => {
      req.on('response', (headers) => resolve(headers[':status']));
      req.on('close', () => resolve(undefined));
    });
    req.resume();
    const chunk = Buffer.alloc(16 * 1024, 0x61);
    let sent = 0;
    // Writes until the body is sent or the sidecar stops taking it (its window full while the app does not read).
    const pump = () => {
      while (!req.destroyed && !req.closed && sent < bytes) {
        const piece = chunk.subarray(0, Math.min(chunk.length, bytes - sent));
        sent += piece.length;
        if (!req.write(piece)) return void req.once('drain', pump);
      }
      if (sent >= length) req.end();
    };
    pump();
    const answered = await status;
    // The session is the test's: it is destroyed after the test's wait, whatever happened.
    setTimeout(() => session.destroy(), 12_000).unref();
    return { status: answered, goaway: () => goaway };
  }

  it('fail/a body backed up behind an early answer is dropped: the stream closes and the session idles out', async () => {
    const before = await idleClosed();
    const { status, goaway } = await post(8 * 1024 * 1024, 8 * 1024 * 1024);
    expect(status).toBe(200);
    expect(await eventually(goaway, 8_000), 'GOAWAY once the session is idle').toBe(true);
    expect(await idleClosed()).toBe(before + 1);
  });

  it('fail/a whole request answered after the first idle expiry: the session still idles out afterwards', async () => {
    const before = await idleClosed();
    const { status, goaway } = await post(1, 1);
    expect(status).toBe(200);
    expect(await eventually(goaway, 8_000), 'GOAWAY once the session is idle').toBe(true);
    expect(await idleClosed()).toBe(before + 1);
  });
});
