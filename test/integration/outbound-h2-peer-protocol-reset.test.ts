// An HTTP/2 peer whose response breaks the protocol after its head (found by a hostile-peer probe): a body shorter or
// longer than its content-length, which this sidecar's nghttp2 resets with PROTOCOL_ERROR, or a flood (PINGs, empty
// DATA frames) for which it closes the whole session. The outbound logged each as "peer reset the stream
// mid-response" and counted nothing but the peer's 200. Now a cut after body bytes reached the app is logged as this
// sidecar's own protocol-error reset and counted in meshauth_streams_reset_total{direction="outbound",
// reason="protocol_error"}, as the inbound counts a caller's; a cut before any body byte is a 502 saying the same.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type LogLines, logLines } from '../helpers/log-lines.js';
import { callThroughOutbound } from '../helpers/outbound-call.js';
import { H2_FRAME, type RawH2Peer, type RawStream, startRawH2Peer } from '../helpers/raw-h2-peer.js';
import { startRoutedSidecar, type TestSidecar } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

/** Frames a flood writes at most: nghttp2 and node:http2 stop the session long before (about a thousand). */
const FLOOD_FRAMES = 100_000;
const FLOOD_BATCH = 2_000;

/** Writes `frame` up to FLOOD_FRAMES times, a batch per turn of the event loop, until the client closed the connection. */
function flood(stream: RawStream, frame: () => void): void {
  let sent = 0;
  const batch = (): void => {
    for (let i = 0; i < FLOOD_BATCH && sent < FLOOD_FRAMES; i++, sent++) frame();
    if (sent < FLOOD_FRAMES && !stream.connection.socket.destroyed) setImmediate(batch);
  };
  batch();
}

describe('outbound: an HTTP/2 peer whose response breaks the protocol', () => {
  let ca: TestCa;
  let peerId: string;
  let peer: RawH2Peer;
  let script: (stream: RawStream) => void = () => undefined;
  // A sidecar per case: the protocol-error line is rate-limited (one per 10 s), as a flood cuts many streams at once.
  let a: TestSidecar;
  let logs: LogLines;

  beforeAll(async () => {
    ca = await TestCa.create();
    peerId = ca.idFor('/ns/b/sa/b');
    peer = await startRawH2Peer(await ca.issue({ id: peerId }), ca.bundlePem, { onStream: (s) => script(s) });
  });
  afterAll(async () => {
    await peer?.close();
  });
  beforeEach(async () => {
    logs = logLines('outbound', 'info');
    a = await startRoutedSidecar(ca, peer.port, peerId, {}, { logger: logs.logger });
  });
  afterEach(async () => {
    await a?.sidecar.close(0);
  });

  const get = (path: string, onData?: () => void) => callThroughOutbound(a.sidecar.outboundPort, 'GET', path, onData);

  async function protocolResets(): Promise<number> {
    const { values } = await a.metrics.streamsReset.get();
    return values.find((v) => v.labels.direction === 'outbound' && v.labels.reason === 'protocol_error')?.value ?? 0;
  }

  const CUT_LINE = 'peer stream reset by this sidecar for an HTTP/2 protocol error; response to the app aborted';

  it('fail/a body shorter than its content-length → cut, logged as this sidecar’s PROTOCOL_ERROR reset, counted', async () => {
    let held: RawStream | undefined;
    script = (stream) => {
      held = stream;
      stream.respond(200, { 'content-length': '10' });
      stream.data('hello');
    };
    const before = { resets: await protocolResets(), lines: logs.lines.length };
    // END_STREAM after 5 of 10 bytes, once those 5 reached the app: nghttp2 resets the stream (PROTOCOL_ERROR).
    const seen = await get('/short', () => held?.data('', true));
    expect(seen).toMatchObject({ status: 200, body: 'hello', cut: true });
    expect(held?.resetCode).toBe(0x1); // the reset came from this sidecar
    expect(await protocolResets()).toBe(before.resets + 1);
    const lines = logs.lines.slice(before.lines);
    expect(lines.find((l) => l.msg === CUT_LINE)).toMatchObject({ reason: 'protocol_error', rstCode: 1 });
    expect(lines.some((l) => String(l.msg).startsWith('peer reset the stream'))).toBe(false);
  });

  it('fail/a body longer than its content-length, before any byte reached the app → 502 naming the protocol error', async () => {
    script = (stream) => {
      stream.respond(200, { 'content-length': '2' });
      stream.data('helloworld', true);
    };
    const before = logs.lines.length;
    const seen = await get('/long');
    expect(seen.status).toBe(502);
    expect(JSON.parse(seen.body)).toMatchObject({ code: 'MESHAUTH_ERR_UPSTREAM_PROTOCOL' });
    const line = logs.lines.slice(before).find((l) => l.code === 'MESHAUTH_ERR_UPSTREAM_PROTOCOL');
    expect(line).toMatchObject({ reason: 'protocol_error' });
    // Node 20's nghttp2 resets the stream (PROTOCOL_ERROR); Node 24's closes the whole session for it.
    expect(String(line?.msg)).toMatch(
      /^request rejected: peer response cut after its head, before any body: this sidecar (reset the stream for an HTTP\/2 protocol error \(PROTOCOL_ERROR\)|closed the HTTP\/2 connection to the peer, which broke the protocol)/,
    );
  });

  it.each([
    ['PINGs whose acknowledgements it never reads', 'ERR_HTTP2_ERROR', H2_FRAME.ping, Buffer.alloc(8)],
    ['empty DATA frames', 'ERR_HTTP2_TOO_MANY_INVALID_FRAMES', H2_FRAME.data, Buffer.alloc(0)],
  ])(
    'fail/a flood of %s mid-body → cut, logged as this sidecar closing the session (%s), counted',
    async (_name, code, type, payload) => {
      let held: RawStream | undefined;
      script = (stream) => {
        held = stream;
        stream.respond(200, { 'content-type': 'text/plain' });
        stream.data('partial');
      };
      const before = { resets: await protocolResets(), lines: logs.lines.length };
      const seen = await get(`/flood-${type}`, () => {
        const stream = held as RawStream;
        stream.connection.socket.pause(); // reads nothing more, PING acknowledgements included
        flood(stream, () => stream.connection.frame(type, 0, type === H2_FRAME.ping ? 0 : stream.id, payload));
      });
      expect(seen).toMatchObject({ status: 200, body: 'partial', cut: true });
      await waitFor('the protocol-error reset counted', async () => (await protocolResets()) === before.resets + 1);
      const line = logs.lines.slice(before.lines).find((l) => l.msg === CUT_LINE);
      expect(line).toMatchObject({ reason: 'protocol_error' });
      expect(String(line?.why)).toContain(`this sidecar closed the HTTP/2 connection to the peer`);
      expect(String(line?.why)).toContain(code);
    },
  );
});
