// How the outbound words a request the peer never answered, against a frame-level h2 peer. A POST whose connection
// dies (the peer's sidecar killed or restarted) is answered 503 and logged as a lost connection, in words; a stream
// the peer resets on a live connection is logged with its HTTP/2 error code's name and meaning. Found in review: a
// killed peer's POSTs logged "peer reset the stream (code 8)": the peer had reset nothing (8, CANCEL, was the
// outbound's own teardown of the stream), and the bare number told the reader nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logLines } from '../helpers/log-lines.js';
import { type RawH2Peer, type RawStream, startRawH2Peer } from '../helpers/raw-h2-peer.js';
import { PEER_HOST, startRoutedSidecar, type TestSidecar, viaProxy } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

const CANCEL = 0x8;
const ENHANCE_YOUR_CALM = 0xb;

describe('outbound: a peer that drops or resets a request, in words', () => {
  let peer: RawH2Peer;
  let a: TestSidecar;
  let script: (stream: RawStream) => void = () => undefined;
  const logs = logLines('outbound', 'info');

  beforeAll(async () => {
    const ca = await TestCa.create();
    const peerId = ca.idFor('/ns/b/sa/b');
    peer = await startRawH2Peer(await ca.issue({ id: peerId }), ca.bundlePem, { onStream: (s) => script(s) });
    a = await startRoutedSidecar(ca, peer.port, peerId, {}, { logger: logs.logger });
  });
  afterAll(async () => {
    await a?.sidecar.close(0);
    await peer?.close();
  });

  /** POSTs to `path` and returns the answer and the one rejection line logged for it. */
  async function post(path: string): Promise<{ status: number; code: unknown; msg: unknown; reason: unknown }> {
    const before = logs.lines.length;
    const res = await viaProxy(a.sidecar.outboundPort, `http://${PEER_HOST}${path}`, { method: 'POST', body: 'x=1' });
    const lines = logs.lines.slice(before).filter((l) => l.code === 'MESHAUTH_ERR_PEER_UNAVAILABLE');
    expect(lines).toHaveLength(1);
    return { status: res.status, code: JSON.parse(res.body).code, msg: lines[0]?.msg, reason: lines[0]?.reason };
  }

  it('fail/the peer connection dies under a POST → 503, logged as a lost connection, not a reset by the peer', async () => {
    script = (stream) => setTimeout(() => stream.connection.destroy(), 20);
    const answer = await post('/killed');
    expect(answer).toMatchObject({ status: 503, code: 'MESHAUTH_ERR_PEER_UNAVAILABLE', reason: 'connection_lost' });
    expect(answer.msg).toBe(
      'request rejected: the connection to the peer closed before its answer: the peer sidecar exited or ' +
        'restarted, or the network cut the connection, while the request was in flight; not retried, since the ' +
        'peer may have processed it',
    );
  });

  it.each([
    [
      CANCEL,
      'the peer reset the stream (HTTP/2 code 8, CANCEL: the peer gave up the request, e.g. its sidecar was closing)',
    ],
    [
      ENHANCE_YOUR_CALM,
      'the peer reset the stream (HTTP/2 code 11, ENHANCE_YOUR_CALM: the peer is limiting this sidecar’s load)',
    ],
    [0x42, 'the peer reset the stream (HTTP/2 code 66, not a code HTTP/2 defines)'],
  ])('fail/the peer resets the stream with code %i on a live connection → 503 naming the code', async (code, text) => {
    script = (stream) => stream.reset(code);
    const answer = await post(`/reset-${code}`);
    expect(answer).toMatchObject({ status: 503, code: 'MESHAUTH_ERR_PEER_UNAVAILABLE', reason: 'reset' });
    expect(answer.msg).toBe(`request rejected: ${text}`);
  });
});
