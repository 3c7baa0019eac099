// What the outbound retries (once) and what it does not, against a frame-level h2 peer: a refused stream (any
// method, body replayed), a stream above the peer's GOAWAY last stream id, and — for bodiless GET only — a
// connection that dies before the response head; a POST whose connection dies is answered 503, never sent twice.
// An unusable response head is a 502, not a 503.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RawH2Peer, type RawStream, startRawH2Peer } from '../helpers/raw-h2-peer.js';
import { startTestSidecar, type TestSidecar, testConfig, viaProxy } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

const REFUSED_STREAM = 0x7;

describe('outbound retries of never-processed requests', () => {
  let ca: TestCa;
  let peer: RawH2Peer;
  let a: TestSidecar;
  let script: (stream: RawStream, index: number) => void = () => undefined;
  let index = 0;
  /** Answer a stream once its whole request body arrived (the replayed-POST test). */
  let answerUploads = false;
  const peerId = 'spiffe://example.org/ns/b/sa/b';

  beforeAll(async () => {
    ca = await TestCa.create();
    const svid = await ca.issue({ id: peerId });
    peer = await startRawH2Peer(svid, ca.bundlePem, {
      onStream: (stream) => script(stream, index++),
      onData: (stream) => {
        if (answerUploads && stream.endStreamSeen && stream.bodyBytes > 0 && !stream.resetSent) {
          stream.respond(200, { 'x-body-bytes': String(stream.bodyBytes) }, true);
        }
      },
    });
    a = await startTestSidecar(
      ca,
      ca.idFor('/ns/a/sa/a'),
      testConfig({ appPort: 1, routes: { 'b.mesh': { address: `127.0.0.1:${peer.port}`, ids: [peerId] } } }),
    );
  });
  afterAll(async () => {
    await a?.sidecar.close(0);
    await peer?.close();
  });

  async function retries(reason: string): Promise<number> {
    const { values } = await a.metrics.requestRetries.get();
    return values.find((v) => v.labels.direction === 'outbound' && v.labels.reason === reason)?.value ?? 0;
  }

  function reset(): void {
    index = 0;
    answerUploads = false;
  }

  it('ok/a refused POST is sent again with its body and succeeds', async () => {
    reset();
    answerUploads = true;
    script = (stream, i) => {
      if (i === 0) stream.reset(REFUSED_STREAM);
      // the second attempt is answered by onData once its whole body arrived
    };
    const before = await retries('refused_stream');
    const streamsBefore = peer.streams.length;
    const res = await viaProxy(a.sidecar.outboundPort, 'http://b.mesh/pay', { method: 'POST', body: 'amount=10' });
    expect(res.status).toBe(200);
    expect(res.headers['x-body-bytes']).toBe('9');
    expect(peer.streams.length - streamsBefore).toBe(2);
    expect(await retries('refused_stream')).toBe(before + 1);
  });

  it('fail/refused twice → 503 MESHAUTH_ERR_PEER_UNAVAILABLE after exactly one retry', async () => {
    reset();
    script = (stream) => stream.reset(REFUSED_STREAM);
    const streamsBefore = peer.streams.length;
    const res = await viaProxy(a.sidecar.outboundPort, 'http://b.mesh/x');
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body).code).toBe('MESHAUTH_ERR_PEER_UNAVAILABLE');
    expect(peer.streams.length - streamsBefore).toBe(2);
  });

  it('ok/a stream above the GOAWAY last stream id is retried on a new session', async () => {
    reset();
    script = (stream, i) => {
      if (i === 0) {
        stream.connection.goaway(stream.id - 2); // "I processed nothing from this stream on"
        setTimeout(() => stream.connection.destroy(), 20);
        return;
      }
      stream.respond(200, {}, false);
      stream.data('second session', true);
    };
    const before = (await retries('goaway')) + (await retries('refused_stream'));
    const connectionsBefore = peer.connections();
    const res = await viaProxy(a.sidecar.outboundPort, 'http://b.mesh/goaway', { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(res.body).toBe('second session');
    expect(peer.connections()).toBe(connectionsBefore + 1);
    expect((await retries('goaway')) + (await retries('refused_stream'))).toBe(before + 1);
  });

  it('ok/a stream at or below the GOAWAY last stream id still completes (graceful drain of the peer)', async () => {
    reset();
    script = (stream, i) => {
      if (i === 0) {
        stream.connection.goaway(stream.id);
        setTimeout(() => {
          stream.respond(200, {}, false);
          stream.data('drained', true);
        }, 300);
        return;
      }
      stream.respond(200, {}, false);
      stream.data('next session', true);
    };
    const streamsBefore = peer.streams.length;
    const res = await viaProxy(a.sidecar.outboundPort, 'http://b.mesh/slow', { method: 'POST', body: 'x' });
    expect([res.status, res.body]).toEqual([200, 'drained']);
    expect(peer.streams.length - streamsBefore).toBe(1);
    const next = await viaProxy(a.sidecar.outboundPort, 'http://b.mesh/after');
    expect([next.status, next.body]).toEqual([200, 'next session']);
  });

  it('ok/a GET whose connection dies before the response head is retried', async () => {
    reset();
    script = (stream, i) => {
      if (i === 0) {
        stream.connection.destroy();
        return;
      }
      stream.respond(200, {}, false);
      stream.data('retried', true);
    };
    const before = await retries('connection_lost');
    const res = await viaProxy(a.sidecar.outboundPort, 'http://b.mesh/lost');
    expect(res.status).toBe(200);
    expect(res.body).toBe('retried');
    expect(await retries('connection_lost')).toBe(before + 1);
  });

  it('fail/a POST whose connection dies before the response head → 503, never sent twice', async () => {
    reset();
    script = (stream, i) => {
      if (i === 0) setTimeout(() => stream.connection.destroy(), 20);
      else stream.respond(200, {}, true);
    };
    const streamsBefore = peer.streams.length;
    const res = await viaProxy(a.sidecar.outboundPort, 'http://b.mesh/pay', { method: 'POST', body: 'amount=10' });
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body).code).toBe('MESHAUTH_ERR_PEER_UNAVAILABLE');
    expect(peer.streams.length - streamsBefore).toBe(1);
  });

  it('fail/a malformed response head (connection-specific header in h2) → 502 MESHAUTH_ERR_UPSTREAM_PROTOCOL', async () => {
    reset();
    script = (stream) => stream.respond(200, { connection: 'keep-alive' }, true);
    const res = await viaProxy(a.sidecar.outboundPort, 'http://b.mesh/bad-head');
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body).code).toBe('MESHAUTH_ERR_UPSTREAM_PROTOCOL');
  });
});
