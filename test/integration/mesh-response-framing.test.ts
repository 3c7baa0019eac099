// What an app's response head becomes on its way back through the mesh (app B → B's inbound → A's outbound → app A),
// over the default HTTP/2 hop and over HTTP/1.1 (`outbound.http2: false`): a head the HTTP/1.1 hop delivers must be
// delivered over HTTP/2 too, and the far app gets it complete, never a 5xx that blames the peer sidecar.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SidecarPair, startPair, viaProxy } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

/**
 * Answers `/gzip-coded` with a body gzip-coded as a transfer coding (`Transfer-Encoding: gzip, chunked`),
 * `/no-content` with a 204 that carries a Content-Length, `/status-999` with a status outside 100–599, `/fields/<n>` with n small header fields beside content-length, `/not-modified` with a 304 that carries
 * the Content-Length of the representation it stands for (RFC 9110 §8.6 allows it), else 200 OK.
 */
function appHandler(req: IncomingMessage, res: ServerResponse): void {
  if (req.url === '/gzip-coded') {
    res.writeHead(200, { 'transfer-encoding': 'gzip, chunked' }); // node:http still chunks it
    res.end(gzipSync('hello'));
    return;
  }
  if (req.url === '/no-content') {
    res.writeHead(204, { 'content-length': '5' }); // not allowed (RFC 9110 §8.6), but said by some apps
    res.end();
    return;
  }
  if (req.url === '/status-999') {
    res.writeHead(999, { 'content-length': '2' });
    res.end('ok');
    return;
  }
  if (req.url === '/not-modified') {
    res.writeHead(304, { etag: '"v1"', 'content-length': '5' });
    res.end();
    return;
  }
  const fields = /^\/fields\/(\d+)$/.exec(req.url ?? '');
  if (fields !== null) {
    const headers: string[] = [];
    for (let i = 0; i < Number(fields[1]); i++) headers.push(`x-f${i}`, 'v');
    res.writeHead(200, [...headers, 'content-length', '2']);
    res.end('ok');
    return;
  }
  res.writeHead(200, { 'content-length': '2' });
  res.end('ok');
}

describe.each([
  ['h2', false],
  ['http1', true],
])('mesh response framing over %s', (_name, http1) => {
  let pair: SidecarPair;

  beforeAll(async () => {
    pair = await startPair(await TestCa.create(), { appHandler, http1 });
  });
  afterAll(async () => pair?.close());

  async function rejectedAtA(): Promise<number> {
    const values = (await pair.a.metrics.requestsRejected.get()).values;
    return values.reduce((sum, v) => sum + v.value, 0);
  }

  /** Rejections and stream resets (a truncation, a caller abort) either sidecar counted. */
  async function failuresCounted(): Promise<number> {
    let sum = 0;
    for (const side of [pair.a, pair.b]) {
      for (const metric of [side.metrics.requestsRejected, side.metrics.streamsReset]) {
        for (const v of (await metric.get()).values) sum += v.value;
      }
    }
    return sum;
  }

  // The HTTP/1.1 hop carries a head up to its size limit whatever its field count; node:http2's client stopped at
  // 128 fields (pseudo-headers included) and reset the stream, which the app saw as a 503 PEER_UNAVAILABLE.
  it.each([[100], [130], [300], [1000]])('ok/a response with %i small header fields arrives whole', async (count) => {
    const before = await rejectedAtA();
    const res = await viaProxy(pair.a.sidecar.outboundPort, `http://b.mesh/fields/${count}`);
    expect(res.status).toBe(200);
    expect(res.body).toBe('ok');
    expect(Object.keys(res.headers).filter((name) => name.startsWith('x-f')).length).toBe(count);
    expect(await rejectedAtA()).toBe(before);
  });

  // undici takes a 304's Content-Length for a body it then misses (ResponseContentLengthMismatchError after the head):
  // over HTTP/1.1 the caller got a 503 for an answer the app gave, over h2 the complete 304 was counted as cut.
  it('ok/a 304 with the Content-Length of its representation reaches the caller as the app sent it', async () => {
    const before = await failuresCounted();
    const seen = pair.appB.seen.length;
    for (let i = 0; i < 2; i++) {
      const res = await viaProxy(pair.a.sidecar.outboundPort, 'http://b.mesh/not-modified');
      expect(res.status).toBe(304);
      expect(res.headers.etag).toBe('"v1"');
      expect(res.body).toBe('');
    }
    expect(pair.appB.seen.length).toBe(seen + 2); // once each: not retried as a lost connection
    const ok = await viaProxy(pair.a.sidecar.outboundPort, 'http://b.mesh/after');
    expect(ok.status).toBe(200);
    expect(await failuresCounted()).toBe(before);
  });

  // undici removes only the chunking and Transfer-Encoding is hop-by-hop, so the coded bytes would reach the caller
  // as the body, undeclared: the answer is unusable, as a request with such a coding is at both listeners.
  it('fail/a response with a transfer coding besides chunked → 502 MESHAUTH_ERR_UPSTREAM_PROTOCOL, never the coded bytes', async () => {
    const res = await viaProxy(pair.a.sidecar.outboundPort, 'http://b.mesh/gzip-coded');
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'MESHAUTH_ERR_UPSTREAM_PROTOCOL' });
    const rejected = (await pair.b.metrics.requestsRejected.get()).values;
    expect(rejected.find((v) => v.labels.code === 'MESHAUTH_ERR_UPSTREAM_PROTOCOL')?.value).toBe(1);
    const ok = await viaProxy(pair.a.sidecar.outboundPort, 'http://b.mesh/after');
    expect(ok.status).toBe(200);
  });

  // RFC 9110 §15: a status outside 100–599 is invalid. HTTP/1.1 passed 999 on to the caller while h2 could not send
  // it and answered 503 MESHAUTH_ERR_UPSTREAM_UNAVAILABLE (reason connect) for an app that had answered.
  it('fail/a status outside 100–599 → 502 MESHAUTH_ERR_UPSTREAM_PROTOCOL on either protocol', async () => {
    const protocolErrors = async () =>
      (await pair.b.metrics.requestsRejected.get()).values.find(
        (v) => v.labels.code === 'MESHAUTH_ERR_UPSTREAM_PROTOCOL',
      )?.value ?? 0;
    const before = await protocolErrors();
    const res = await viaProxy(pair.a.sidecar.outboundPort, 'http://b.mesh/status-999');
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'MESHAUTH_ERR_UPSTREAM_PROTOCOL' });
    expect(await protocolErrors()).toBe(before + 1);
  });

  // nghttp2 refuses a 204 HEADERS frame with a non-zero content-length: over h2 the app's 204 became a 502 blaming
  // the peer sidecar, while HTTP/1.1 delivered it. A 204 has no content, so its Content-Length says nothing.
  // A server must not send Content-Length in a 204 (RFC 9110 §8.6): over HTTP/1.1 the app's one was passed on.
  it('ok/a 204 with a Content-Length reaches the caller as a 204 on either protocol, without it', async () => {
    const before = await failuresCounted();
    const res = await viaProxy(pair.a.sidecar.outboundPort, 'http://b.mesh/no-content');
    expect(res.status).toBe(204);
    expect(res.body).toBe('');
    expect(res.headers['content-length']).toBeUndefined();
    expect(await failuresCounted()).toBe(before);
  });

  // 500 small fields fit HTTP/1.1's 16 KB but not the peer's advertised h2 header list (32 bytes more per field):
  // node:http2 refused to send the request and the outbound answered 503 PEER_UNAVAILABLE ("peer reset the stream").
  it("fail/a request head over the h2 peer's header list limit → 431, never a 503 blaming the peer", async () => {
    expect((await viaProxy(pair.a.sidecar.outboundPort, 'http://b.mesh/warm')).status).toBe(200);
    const headers: Record<string, string> = {};
    for (let i = 0; i < 500; i++) headers[`x${i}`] = 'v';
    const res = await viaProxy(pair.a.sidecar.outboundPort, 'http://b.mesh/many-fields', { headers });
    if (http1) {
      expect(res.status).toBe(200); // the HTTP/1.1 inbound counts the head's bytes only
      return;
    }
    expect(res.status).toBe(431);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'MESHAUTH_ERR_HEADERS_TOO_LARGE' });
    const peerUnavailable = (await pair.a.metrics.requestsRejected.get()).values.find(
      (v) => v.labels.code === 'MESHAUTH_ERR_PEER_UNAVAILABLE',
    );
    expect(peerUnavailable?.value ?? 0).toBe(0);
  });
});
