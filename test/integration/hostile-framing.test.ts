// Message framing a strict parser refuses, at both ends of the data path: the inbound (a peer over mTLS) and the
// outbound (the app over plain HTTP/1.1). Each variant gets 400 and a closed connection, and no complete request
// reaches the app behind the peer: Content-Length lists, signs and other non-digits; bare CR and bare LF as line
// endings in the head and in chunk-size lines.
import { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawTlsExchange } from '../helpers/raw-tls.js';
import { type SidecarPair, startPair } from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';

let ca: TestCa;
let pair: SidecarPair;
let client: TestSvid;

beforeAll(async () => {
  ca = await TestCa.create();
  pair = await startPair(ca);
  client = await ca.issue({ id: ca.idFor('/ns/shop/sa/client') });
});
afterAll(async () => {
  await pair?.close();
});

/** Writes raw bytes to the outbound's plain port; resolves with everything read until the sidecar closes. */
function outboundExchange(bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = new Socket();
    socket.connect(pair.a.sidecar.outboundPort, '127.0.0.1', () => socket.write(bytes));
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
    });
    socket.on('close', () => resolve(text));
    socket.on('error', (e) => (text === '' ? reject(e) : resolve(text)));
    socket.setTimeout(5_000, () => socket.destroy());
  });
}

const POST = 'POST /upload HTTP/1.1\r\nHost: b.mesh\r\n';
const CHUNKED = `${POST}Transfer-Encoding: chunked\r\n\r\n`;
// [name, bytes after the request line and Host]: every one is framing a strict HTTP/1.1 parser must refuse.
const cases: Array<[string, string]> = [
  ['H02 Content-Length: 5, 6', `${POST}Content-Length: 5, 6\r\n\r\nhello!`],
  ['H02 Content-Length: 5, 5 (a list, even of equal values)', `${POST}Content-Length: 5, 5\r\n\r\nhello`],
  ['H02 Content-Length: +5', `${POST}Content-Length: +5\r\n\r\nhello`],
  ['H02 Content-Length: -1', `${POST}Content-Length: -1\r\n\r\nhello`],
  ['H02 Content-Length: 0x5', `${POST}Content-Length: 0x5\r\n\r\nhello`],
  ['H02 Content-Length: 5 5', `${POST}Content-Length: 5 5\r\n\r\nhello`],
  ['H05 bare CR ending a header line', `${POST}X-A: 1\rContent-Length: 5\r\n\r\nhello`],
  ['H05 bare LF ending a header line', `${POST}X-A: 1\nContent-Length: 5\r\n\r\nhello`],
  ['H05 bare LF after a chunk size', `${CHUNKED}5\nhello\r\n0\r\n\r\n`],
  ['H05 bare CR after a chunk size', `${CHUNKED}5\rhello\r\n0\r\n\r\n`],
  ['H05 bare LF after the last chunk', `${CHUNKED}5\r\nhello\r\n0\n\n`],
];

describe('framing a strict parser refuses', () => {
  /** meshauth_requests_rejected_total{direction="inbound",code="MESHAUTH_ERR_BAD_REQUEST"}. */
  const inboundBadRequests = async () =>
    (await pair.b.metrics.requestsRejected.get()).values
      .filter((v) => v.labels.direction === 'inbound' && v.labels.code === 'MESHAUTH_ERR_BAD_REQUEST')
      .reduce((sum, v) => sum + v.value, 0);

  it.each(cases)('fail/inbound: %s → 400, closed, nothing complete reaches the app', async (_name, bytes) => {
    const seen = pair.appB.seen.length;
    const rejected = await inboundBadRequests();
    const reply = await rawTlsExchange(pair.b.sidecar.inboundPort, client, ca.bundlePem, bytes);
    expect(reply.split('\r\n', 1)[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(reply).toContain('"code":"MESHAUTH_ERR_BAD_REQUEST"');
    expect(pair.appB.seen.length).toBe(seen);
    expect((await inboundBadRequests()) - rejected).toBe(1);
  });

  it.each(cases)('fail/outbound: %s → 400, closed, nothing complete reaches the app', async (_name, bytes) => {
    const seen = pair.appB.seen.length;
    const reply = await outboundExchange(bytes);
    expect(reply.split('\r\n', 1)[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(pair.appB.seen.length).toBe(seen);
  });

  it('ok/the same request well framed passes both ends', async () => {
    const seen = pair.appB.seen.length;
    const reply = await outboundExchange(`${POST}Content-Length: 5\r\nConnection: close\r\n\r\nhello`);
    expect(reply.split('\r\n', 1)[0]).toBe('HTTP/1.1 200 OK');
    expect(pair.appB.seen.length).toBe(seen + 1);
    expect(pair.appB.seen.at(-1)?.bodyBytes).toBe(5);
  });
});
