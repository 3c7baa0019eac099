// An HTTP/2 upload at the gateway whose body turns out shorter than its content-length only after the peer has answered
// its head and is still streaming its body: nghttp2 resets the browser's stream with PROTOCOL_ERROR. The request was
// counted in meshauth_requests_total at its head (200); both peer paths then counted it a second time as a 400
// `body_incomplete` rejection (one request, two counts, a 400 line for an answered request): the HTTP/1.1 path's
// close check (e85f2e1) and H2Exchange.bodyClosed did not look at whether the head had gone out. Found by review.
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port.js';
import {
  type GatewayMesh,
  type GatewayWithHttp1Peer,
  startGatewayMesh,
  startGatewayWithHttp1Peer,
} from '../helpers/gateway-mesh.js';
import { rawH2Client, rstCodeOf } from '../helpers/raw-h2-client.js';
import { eventually } from '../helpers/wait.js';

const HEADERS = 0x1;
const RST_STREAM = 0x3;
const PROTOCOL_ERROR = 0x1;

describe('gateway: an HTTP/2 upload broken after the HTTP/1.1 peer answered its head', () => {
  let started: GatewayWithHttp1Peer | undefined;
  const heads: string[] = [];
  beforeAll(async () => {
    started = await startGatewayWithHttp1Peer((req, res) => {
      // Answers at once and keeps its body open: the upload is still due when the head reaches the browser.
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('streaming');
      heads.push(req.url ?? '');
      req.resume();
      req.once('close', () => res.destroy());
    });
  });
  afterAll(async () => {
    await started?.close();
  });

  it('fail/the request is counted once (its 200), the broken upload as a protocol_error stream reset', async () => {
    const mesh = (started as GatewayWithHttp1Peer).mesh;
    const requests = async () =>
      (await mesh.metrics.requests.get()).values
        .filter((v) => v.labels.direction === 'outbound')
        .reduce((sum, v) => sum + v.value, 0);
    const resets = async () =>
      (await mesh.metrics.streamsReset.get()).values
        .filter((v) => v.labels.direction === 'outbound' && v.labels.reason === 'protocol_error')
        .reduce((sum, v) => sum + v.value, 0);
    const before = { requests: await requests(), resets: await resets() };
    const port = Number(new URL(mesh.origin).port);
    const c = await rawH2Client(port, mesh.files.caPem);
    try {
      c.headers(1, [
        [':method', 'POST'],
        [':scheme', 'https'],
        [':authority', `127.0.0.1:${port}`],
        [':path', '/legacy/late-short'],
        ['content-type', 'text/plain'],
        ['content-length', '10'],
      ]);
      c.data(1, 'abcde', false);
      expect(await eventually(() => c.received.some((f) => f.type === HEADERS && f.stream === 1))).toBe(true);
      c.data(1, '', true); // 5 of 10 bytes, then END_STREAM
      expect(await eventually(() => c.received.some((f) => f.type === RST_STREAM && f.stream === 1))).toBe(true);
      expect(rstCodeOf(c.received.find((f) => f.type === RST_STREAM && f.stream === 1) as (typeof c.received)[0])).toBe(
        PROTOCOL_ERROR,
      );
    } finally {
      c.close();
    }
    expect(heads).toContain('/legacy/late-short');
    expect(await eventually(async () => (await resets()) > before.resets)).toBe(true);
    expect(await requests()).toBe(before.requests + 1);
    expect(await resets()).toBe(before.resets + 1);
    expect(mesh.log.find({ reason: 'body_incomplete' })).toHaveLength(0);
  });
});

describe('gateway: an HTTP/2 upload broken after the HTTP/2 peer answered its head', () => {
  const PEER_ID = 'spiffe://example.org/ns/stream/sa/h2';
  let mesh: GatewayMesh;
  let peer: Http2SecureServer;
  const heads: string[] = [];
  beforeAll(async () => {
    const peerPort = await freePort();
    mesh = await startGatewayMesh({
      gateway: (base) => ({
        ...base,
        routes: [
          {
            name: 'stream',
            match: { host: '127.0.0.1', pathPrefix: '/stream' },
            to: { address: `127.0.0.1:${peerPort}`, ids: [PEER_ID] },
            login: 'none',
          },
          ...(base.routes as unknown[]),
        ],
      }),
    });
    const svid = await mesh.ca.issue({ id: PEER_ID });
    peer = createSecureServer({
      cert: svid.chainPem,
      key: svid.keyPem,
      ca: [mesh.ca.rootPem],
      requestCert: true,
      rejectUnauthorized: true,
    });
    peer.on('stream', (stream, headers) => {
      // Answers at once and keeps its body open: the upload is still due when the head reaches the browser.
      heads.push(String(headers[':path']));
      stream.on('error', () => {});
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.write('streaming');
      stream.resume();
    });
    await new Promise<void>((resolve) => peer.listen(peerPort, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    await mesh?.close();
    await new Promise<void>((resolve) => (peer === undefined ? resolve() : peer.close(() => resolve())));
  });

  it('fail/the request is counted once (its 200), the broken upload as a protocol_error stream reset', async () => {
    const before = await counts(mesh);
    const lines = mesh.log.find({ reason: 'body_incomplete' }).length;
    expect(await shortAfterHead(mesh, '/stream/late-short')).toBe(PROTOCOL_ERROR);
    expect(heads).toContain('/stream/late-short');
    expect(await eventually(async () => (await counts(mesh)).resets > before.resets)).toBe(true);
    expect(await counts(mesh)).toEqual({ requests: before.requests + 1, resets: before.resets + 1 });
    expect(mesh.log.find({ reason: 'body_incomplete' })).toHaveLength(lines);
  });
});

/** Requests the gateway counted toward the mesh, and its protocol_error stream resets. */
async function counts(mesh: GatewayMesh): Promise<{ requests: number; resets: number }> {
  const requests = (await mesh.metrics.requests.get()).values
    .filter((v) => v.labels.direction === 'outbound')
    .reduce((sum, v) => sum + v.value, 0);
  const resets = (await mesh.metrics.streamsReset.get()).values
    .filter((v) => v.labels.direction === 'outbound' && v.labels.reason === 'protocol_error')
    .reduce((sum, v) => sum + v.value, 0);
  return { requests, resets };
}

/** HEADERS (content-length 10) and 5 bytes; once the response head is in, END_STREAM. Resolves with the RST code. */
async function shortAfterHead(mesh: GatewayMesh, path: string): Promise<number> {
  const port = Number(new URL(mesh.origin).port);
  const c = await rawH2Client(port, mesh.files.caPem);
  try {
    c.headers(1, [
      [':method', 'POST'],
      [':scheme', 'https'],
      [':authority', `127.0.0.1:${port}`],
      [':path', path],
      ['content-type', 'text/plain'],
      ['content-length', '10'],
    ]);
    c.data(1, 'abcde', false);
    expect(await eventually(() => c.received.some((f) => f.type === HEADERS && f.stream === 1))).toBe(true);
    c.data(1, '', true); // 5 of 10 bytes, then END_STREAM
    expect(await eventually(() => c.received.some((f) => f.type === RST_STREAM && f.stream === 1))).toBe(true);
    return rstCodeOf(c.received.find((f) => f.type === RST_STREAM && f.stream === 1) as (typeof c.received)[0]);
  } finally {
    c.close();
  }
}
