// A peer that answers a POST whole (END_STREAM) before its upload ended, and resets nothing (found by a review): the
// stream stays half open in nghttp2, and it held one of the peer's stream slots while the outbound's own count
// (stream-slots.ts) had given it back. With a peer limit of 1, the next request then went to nghttp2's queue, was
// never sent, got 504, and its session was dropped. Now a slot is the stream's until it closes, and the outbound
// resets the rest of an upload whose answer is complete (never END_STREAM), which closes the stream.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { H2_SETTING, type RawH2Peer, type RawStream, startRawH2Peer } from '../helpers/raw-h2-peer.js';
import { PEER_HOST, startRoutedSidecar, type TestSidecar, viaProxy } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

describe('outbound: a peer that answers before the upload ended, limit of 1 stream', () => {
  let peer: RawH2Peer;
  let a: TestSidecar;
  const answeredEarly = new Set<RawStream>();

  beforeAll(async () => {
    const ca = await TestCa.create();
    const peerId = ca.idFor('/ns/b/sa/b');
    peer = await startRawH2Peer(await ca.issue({ id: peerId }), ca.bundlePem, {
      onStream: (stream) => {
        if (stream.id === 1) stream.connection.settings([[H2_SETTING.maxConcurrentStreams, 1]]);
        if (stream.endStreamSeen) {
          stream.respond(200, { 'content-length': '2' });
          stream.data('ok', true);
        }
      },
      onData: (stream) => {
        if (answeredEarly.has(stream) || stream.bodyBytes === 0) return;
        answeredEarly.add(stream);
        stream.respond(200, { 'content-length': '2' });
        stream.data('ok', true); // whole, with half the upload still to come, and no RST_STREAM
      },
    });
    a = await startRoutedSidecar(ca, peer.port, peerId, { outboundTimeout: '1s' });
  });
  afterAll(async () => {
    await a?.sidecar.close(0);
    await peer?.close();
  });

  it('fail/the next request takes the slot once the answered upload is cancelled: 200, not 504', async () => {
    expect((await viaProxy(a.sidecar.outboundPort, `http://${PEER_HOST}/first`)).status).toBe(200);
    const app = connect(a.sidecar.outboundPort, '127.0.0.1');
    app.on('error', () => undefined);
    let reply = '';
    app.on('data', (chunk: Buffer) => {
      reply += chunk.toString('latin1');
    });
    try {
      await new Promise((resolve) => app.once('connect', resolve));
      app.write(`POST http://${PEER_HOST}/up HTTP/1.1\r\nHost: ${PEER_HOST}\r\ncontent-length: 10000\r\n\r\n`);
      app.write('a'.repeat(5_000));
      await waitFor('the early answer at the app', () => reply.startsWith('HTTP/1.1 200 '));
      app.write('b'.repeat(5_000));
      const upload = [...answeredEarly][0] as RawStream;
      // Reset, never ended: the peer must not take the rest of the upload as complete.
      await waitFor('the rest of the upload cancelled', () => upload.resetCode !== undefined);
      expect(upload.endStreamSeen).toBe(false);
      const after = await viaProxy(a.sidecar.outboundPort, `http://${PEER_HOST}/after`);
      expect(after.status).toBe(200);
    } finally {
      app.destroy();
    }
  });
});
