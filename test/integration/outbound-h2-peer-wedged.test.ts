// A peer whose HTTP/2 session stops carrying streams must not hold the app's requests past outbound.timeout (found
// by a hostile-peer probe). Two ways, each with a valid SVID:
// - SETTINGS_MAX_CONCURRENT_STREAMS = 0 after a first answer (legal; some servers announce it while draining): a
//   request waits in node:http2's queue for a stream id. Its timeout closed the stream, node:http2 put that close off
//   until the stream had an id, so 'close' never came and the app got no answer at all; a request queued behind a
//   slot went to the peer after its 504.
// - A response header field over 64 KiB: nghttp2 refuses the block, sends GOAWAY and stops reading the session
//   without telling node:http2, so no stream of it ever closes and the session, neither closed nor destroyed, was
//   handed to every later request.
// Now a timed-out stream is answered when its timer fires (504 UPSTREAM_TIMEOUT), a stream that never got an id is
// dropped unsent, and a session whose timed-out stream does not close is given up: the next request connects again.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { H2_SETTING, type RawH2Peer, type RawStream, startRawH2Peer } from '../helpers/raw-h2-peer.js';
import { PEER_HOST, startRoutedSidecar, type TestSidecar, viaProxy } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

const TIMEOUT = '600ms';

describe('outbound: a peer session that stops carrying streams', () => {
  let peer: RawH2Peer;
  let a: TestSidecar;
  let script: (stream: RawStream) => void = () => undefined;
  /** Connections gone silent: their PINGs are not acknowledged. */
  const silent = new Set<unknown>();
  /** Request streams the peer has seen, on all its connections. */
  const seen = (): number => peer.streams.length;

  beforeAll(async () => {
    const ca = await TestCa.create();
    const peerId = ca.idFor('/ns/b/sa/b');
    peer = await startRawH2Peer(await ca.issue({ id: peerId }), ca.bundlePem, {
      onStream: (s) => script(s),
      answersPing: (connection) => !silent.has(connection),
    });
    a = await startRoutedSidecar(ca, peer.port, peerId, { outboundTimeout: TIMEOUT });
  });
  afterAll(async () => {
    await a?.sidecar.close(0);
    await peer?.close();
  });
  beforeEach(() => {
    script = () => undefined;
  });

  function get(path: string) {
    return viaProxy(a.sidecar.outboundPort, `http://${PEER_HOST}${path}`);
  }

  it('fail/the peer allows 0 streams → every waiting GET 504 at its timeout, none of them ever reaches the peer', async () => {
    script = (stream) => {
      stream.respond(200, { 'content-length': '2' });
      stream.data('ok', true);
      if (stream.id === 1) stream.connection.settings([[H2_SETTING.maxConcurrentStreams, 0]]);
    };
    const first = await get('/first');
    expect(first.status).toBe(200);
    const streamsBefore = seen();
    const answers = await Promise.all([get('/q1'), get('/q2'), get('/q3')]);
    for (const res of answers) {
      expect(res.status).toBe(504);
      expect(JSON.parse(res.body)).toMatchObject({ code: 'MESHAUTH_ERR_UPSTREAM_TIMEOUT' });
    }
    // They waited in the outbound's line, never in nghttp2's: nothing of the three reached the peer, and the session
    // that allows no stream is given up (the next request connects again).
    await waitFor('the session closed', () => peer.streams[streamsBefore - 1]?.connection.socket.destroyed);
    expect(seen()).toBe(streamsBefore);
  });

  it('fail/the only stream slot held → the queued GETs 504, and none is sent when the slot frees', async () => {
    let held: RawStream | undefined;
    let trickle: NodeJS.Timeout | undefined;
    script = (stream) => {
      if (stream.id === 1) {
        stream.respond(200, { 'content-length': '2' });
        stream.data('ok', true);
        stream.connection.settings([[H2_SETTING.maxConcurrentStreams, 1]]);
      } else if (held === undefined) {
        // Holds the one slot, alive (a byte every 100 ms keeps its idle timer from firing) until the test ends it.
        held = stream;
        stream.respond(200);
        trickle = setInterval(() => stream.data('x'), 100);
      } else {
        stream.respond(200, { 'content-length': '2' });
        stream.data('ok', true);
      }
    };
    try {
      expect((await get('/first')).status).toBe(200);
      const streamsBefore = seen();
      const holding = get('/held');
      await waitFor('the held stream at the peer', () => held !== undefined);
      const answers = await Promise.all(Array.from({ length: 4 }, (_, i) => get(`/queued${i}`)));
      expect(answers.map((r) => r.status)).toEqual([504, 504, 504, 504]);
      // The slot frees: none of the four, answered already, may take it.
      clearInterval(trickle);
      held?.data('', true);
      expect((await holding).status).toBe(200);
      expect((await get('/after')).status).toBe(200);
      expect(seen()).toBe(streamsBefore + 2); // /held and /after
    } finally {
      clearInterval(trickle);
    }
  });

  it('fail/a 70,000-byte response header → the GETs in flight answered, and the next request gets a new session', async () => {
    let wedged = true;
    script = (stream) => {
      if (wedged) stream.respond(200, { 'x-huge': 'h'.repeat(70_000) });
      else {
        stream.respond(200, { 'content-length': '2' });
        stream.data('ok', true);
      }
    };
    const connectionsBefore = peer.connections();
    const streamsBefore = seen();
    const answers = await Promise.all([get('/w1'), get('/w2'), get('/w3')]);
    for (const res of answers) expect([502, 503, 504]).toContain(res.status);
    // nghttp2 refused the block and stopped reading the session without a word to node:http2: given up.
    await waitFor('the wedged session dropped', () => peer.streams[streamsBefore]?.connection.socket.destroyed);
    wedged = false;
    const next = await get('/next');
    expect(next.status).toBe(200);
    expect(peer.connections()).toBeGreaterThan(connectionsBefore);
  });

  it('fail/a peer gone silent on an open connection → 504 once, its unacknowledged PING drops the session, the next request connects again', async () => {
    let goneSilent: unknown;
    script = (stream) => {
      if (goneSilent === undefined) {
        goneSilent = stream.connection;
        silent.add(stream.connection); // reads on, answers nothing from now on, PINGs included
        return;
      }
      stream.respond(200, { 'content-length': '2' });
      stream.data('ok', true);
    };
    const connectionsBefore = peer.connections();
    expect((await get('/lost')).status).toBe(504);
    await waitFor('the silent session dropped', () => (goneSilent as RawStream['connection']).socket.destroyed);
    expect((await get('/next')).status).toBe(200);
    expect(peer.connections()).toBeGreaterThan(connectionsBefore);
  });
});
