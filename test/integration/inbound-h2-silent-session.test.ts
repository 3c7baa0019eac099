// A client's HTTP/2 session that nghttp2 stopped reading must not hold its connection, and the places it counts
// against (per peer and overall), for good (found by a probe): a frame over the 16 KiB frame size makes nghttp2 send
// GOAWAY and read no more, without a word to node:http2, so the 408s of the client's idle streams went nowhere, the
// streams never ended and the connection stayed open until the client closed it. Now, when a stream goes idle, the
// inbound sends a PING; unacknowledged within a second (nghttp2 reads no ACK any more), the session is destroyed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { h2Frame, type RawH2Client, rawH2Client } from '../helpers/raw-h2-client.js';
import { startApp, startTestSidecar, type TestApp, type TestSidecar, testConfig } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

const DATA = 0x0;

describe('inbound h2: a session nghttp2 stopped reading', () => {
  let ca: TestCa;
  let app: TestApp;
  let b: TestSidecar;
  let client: RawH2Client | undefined;

  beforeAll(async () => {
    ca = await TestCa.create();
    // Reads each upload to its end (which never comes) before answering.
    app = await startApp((req, res) => {
      req.resume();
      req.on('end', () => res.end('done'));
    });
    b = await startTestSidecar(ca, ca.idFor('/ns/shop/sa/b'), testConfig({ appPort: app.port, appTimeout: '300ms' }), {
      inboundLimits: { streamIdleTimeoutMs: 300 },
    });
  });
  afterAll(async () => {
    client?.close();
    await b?.sidecar.close(0);
    await app?.close();
  });

  it('fail/streams in flight, then a frame over the frame size → the connection closed once a stream goes idle', async () => {
    const caller = await ca.issue({ id: ca.idFor('/ns/shop/sa/a') });
    const c = await rawH2Client(b.sidecar.inboundPort, ca.bundlePem, caller);
    client = c;
    for (let id = 1; id <= 5; id += 2) {
      c.headers(id, [
        [':method', 'POST'],
        [':scheme', 'https'],
        [':path', `/upload${id}`],
        [':authority', 'b.mesh'],
      ]);
      c.data(id, 'x');
    }
    // A DATA frame of 20,000 bytes where 16,384 is the most: nghttp2 answers GOAWAY(FRAME_SIZE_ERROR), reads no more.
    c.socket.write(h2Frame(DATA, 0, 1, Buffer.alloc(20_000)));
    await waitFor('the connection closed by the inbound', () => c.socket.destroyed || c.socket.readableEnded, 15_000);
    expect(c.received.some((frame) => frame.type === 0x7)).toBe(true); // the GOAWAY came first
  }, 20_000);
});
