// A response a peer spoken to over HTTP/1.1 cuts after its head but before any body byte. node:http and the
// outbound's lean lane send a written head only with the first body byte, so the app got no status line at all (a
// connection closed: "socket hang up"), while meshauth_requests_total counted the peer's 200 and the cut was counted
// as a stream reset beside it (peer_response_truncated). The outbound now holds the peer's head until the first body
// byte or the answer's end, as over HTTP/2: a connection that closes or is reset before it is answered 502
// MESHAUTH_ERR_UPSTREAM_PROTOCOL (reason response_cut), a peer gone silent 504, each counted as that, and a GET is
// not sent again (the peer answered it). A bodiless answer goes out at once; a cut after body bytes is still a cut.
import { request as httpRequest } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logLines } from '../helpers/log-lines.js';
import { callThroughOutbound } from '../helpers/outbound-call.js';
import { eachWholeRequest } from '../helpers/raw-requests.js';
import {
  durationSum,
  PEER_HOST,
  peerServerTls,
  requestsCounted,
  startRoutedSidecar,
  streamsResetCounted,
  type TestSidecar,
} from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

/** How long after its head the peer sends the body, in the late-body case (under the 600 ms outbound.timeout). */
const BODY_DELAY_MS = 400;

/** One request as the peer read it, with its TLS socket and the TCP socket under it (to reset). */
interface PeerRequest {
  readonly head: string;
  readonly tls: TLSSocket;
  readonly tcp: Socket;
}

describe('outbound over HTTP/1.1: a peer cuts its response after the head', () => {
  let peer: Server;
  let a: TestSidecar;
  const requests: PeerRequest[] = [];
  let script: (request: PeerRequest) => void = () => undefined;
  const logs = logLines('outbound', 'info');

  beforeAll(async () => {
    const ca = await TestCa.create();
    const peerId = ca.idFor('/ns/b/sa/b');
    const tlsOptions = { ...peerServerTls(await ca.issue({ id: peerId }), ca), ALPNProtocols: ['http/1.1'] };
    // TLS over a TCP socket of the test's own, so the test can reset that socket (a TLS socket cannot send a RST).
    peer = createNetServer((tcp) => {
      tcp.on('error', () => undefined);
      const tls = new TLSSocket(tcp, { ...tlsOptions, isServer: true });
      tls.on('error', () => undefined);
      eachWholeRequest(tls, (head) => {
        const request = { head, tls, tcp };
        requests.push(request);
        script(request);
      });
    });
    await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
    const peerPort = (peer.address() as AddressInfo).port;
    a = await startRoutedSidecar(
      ca,
      peerPort,
      peerId,
      { outboundTimeout: '600ms', http2: false },
      { logger: logs.logger },
    );
  });
  afterAll(async () => {
    await a?.sidecar.close(0);
    for (const { tcp } of requests) tcp.destroy();
    await new Promise((resolve) => peer?.close(resolve));
  });

  const call = (method: 'GET' | 'POST', path: string, onData?: () => void) =>
    callThroughOutbound(a.sidecar.outboundPort, method, path, onData);

  const counted = (code: string) => requestsCounted(a.metrics, 'outbound', code);
  const resets = (reason: string) => streamsResetCounted(a.metrics, 'outbound', reason);
  async function snapshot() {
    return {
      ok: await counted('200'),
      bad: await counted('502'),
      late: await counted('504'),
      cut: await resets('peer_response_truncated'),
      lines: logs.lines.length,
      requests: requests.length,
    };
  }

  const HEAD_200 = 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 10\r\n\r\n';
  const HEAD_CHUNKED = 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n';
  /** The connection under the answer is reset (RST) once its head is written, not closed. */
  const resetAfter = (bytes: string) => (request: PeerRequest) =>
    request.tls.write(bytes, () => setImmediate(() => request.tcp.resetAndDestroy()));
  const endAfter = (bytes: string) => (request: PeerRequest) => request.tls.end(bytes);

  const CLOSED = ['response_cut', 'the connection to the peer closed'] as const;
  const cuts: Array<[string, 'GET' | 'POST', (request: PeerRequest) => void, readonly [string, string]]> = [
    ['GET, then the connection closes', 'GET', endAfter(HEAD_200), CLOSED],
    ['POST, then the connection closes', 'POST', endAfter(HEAD_200), CLOSED],
    // Node's TLS socket reports the reset as an end: the same words, the cause in the line says which.
    ['GET, then the connection is reset', 'GET', resetAfter(HEAD_200), CLOSED],
    ['GET, chunked, then the connection closes', 'GET', endAfter(HEAD_CHUNKED), CLOSED],
    [
      'GET, chunked, then a chunk size that is no number',
      'GET',
      (request) => request.tls.write(`${HEAD_CHUNKED}zz\r\n`),
      ['protocol_error', 'its body broke HTTP/1.1 (HPE_INVALID_CHUNK_SIZE); this sidecar closed the connection'],
    ],
  ];

  it.each(cuts)(
    'fail/head 200 (%s) before any body byte → 502 UPSTREAM_PROTOCOL, counted as 502 not 200, not sent again',
    async (_name, method, cut, [reason, why]) => {
      script = cut;
      const before = await snapshot();
      const seen = await call(method, `/cut-${method}`);
      expect(seen.error).toBeUndefined(); // before: "socket hang up", no status line at all
      expect(seen.status).toBe(502);
      expect(JSON.parse(seen.body)).toMatchObject({ code: 'MESHAUTH_ERR_UPSTREAM_PROTOCOL' });
      expect(await counted('200')).toBe(before.ok);
      expect(await counted('502')).toBe(before.bad + 1);
      expect(await resets('peer_response_truncated')).toBe(before.cut); // none of the response reached the app
      expect(requests.length).toBe(before.requests + 1); // the peer answered: a GET is not retried
      const lines = logs.lines.slice(before.lines).filter((l) => l.code === 'MESHAUTH_ERR_UPSTREAM_PROTOCOL');
      expect(lines.map((l) => [l.reason, l.msg])).toEqual([
        [reason, `request rejected: peer response cut after its head, before any body: ${why}`],
      ]);
    },
  );

  it('fail/head 200, then nothing for outbound.timeout → 504, counted as 504 not 200', async () => {
    script = (request) => request.tls.write(HEAD_200);
    const before = await snapshot();
    const seen = await call('GET', '/silent');
    expect(seen.status).toBe(504);
    expect(JSON.parse(seen.body)).toMatchObject({ code: 'MESHAUTH_ERR_UPSTREAM_TIMEOUT' });
    expect(await counted('200')).toBe(before.ok);
    expect(await counted('504')).toBe(before.late + 1);
    expect(await resets('peer_response_truncated')).toBe(before.cut);
    expect(requests.length).toBe(before.requests + 1);
    const line = logs.lines.slice(before.lines).find((l) => l.code === 'MESHAUTH_ERR_UPSTREAM_TIMEOUT');
    expect(line).toMatchObject({
      reason: 'timeout',
      msg: 'request rejected: peer sent a response head, then no body in time',
    });
  });

  it.each(['GET', 'POST'] as const)(
    'fail/%s: part of the body went out, then the connection closes → 200 cut short, counted with a reset beside it',
    async (method) => {
      let held: PeerRequest | undefined;
      script = (request) => {
        held = request;
        request.tls.write(`${HEAD_200}part`);
      };
      const before = await snapshot();
      // The close follows the app's first body byte, so the head has gone out by then.
      const seen = await call(method, `/partial-${method}`, () => held?.tls.end());
      expect(seen).toMatchObject({ status: 200, body: 'part', cut: true });
      expect(await counted('200')).toBe(before.ok + 1);
      expect(await counted('502')).toBe(before.bad);
      expect(await resets('peer_response_truncated')).toBe(before.cut + 1);
    },
  );

  it('ok/the head, then the body a moment later → the whole answer, counted once as 200, timed to its head', async () => {
    let held: PeerRequest | undefined;
    script = (request) => {
      held = request;
      request.tls.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n');
    };
    const before = await snapshot();
    const durationBefore = await durationSum(a.metrics, 'outbound');
    const startedAt = performance.now();
    const answer = call('GET', '/late-body');
    await waitFor('the request at the peer', () => held !== undefined);
    // The peer's body comes BODY_DELAY_MS after its head (within outbound.timeout): the request's duration ends at the
    // head's arrival, not at the first body byte the head was held for.
    await new Promise((resolve) => setTimeout(resolve, BODY_DELAY_MS));
    held?.tls.write('hello');
    expect(await answer).toMatchObject({ status: 200, body: 'hello', cut: false });
    const totalSeconds = (performance.now() - startedAt) / 1000;
    expect(await counted('200')).toBe(before.ok + 1);
    const observed = (await durationSum(a.metrics, 'outbound')) - durationBefore;
    expect(observed).toBeGreaterThan(0);
    expect(observed).toBeLessThan(totalSeconds - BODY_DELAY_MS / 2000);
  });

  /** A request of the app with no body, its status and body as the app read them. */
  function bodiless(method: 'GET' | 'HEAD', path: string): Promise<{ status: number | undefined; body: string }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: a.sidecar.outboundPort,
          method,
          path: `http://${PEER_HOST}${path}`,
          headers: { host: PEER_HOST },
          agent: false,
        },
        (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => {
            body += chunk.toString();
          });
          res.on('end', () => resolve({ status: res.statusCode, body }));
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  // The peer keeps its connection open after each of these, sending nothing more: a head held for a body byte would
  // wait for outbound.timeout and be answered 504.
  const complete: Array<[string, 'GET' | 'HEAD', string, number]> = [
    ['HEAD answered 200 with a content-length', 'HEAD', 'HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n', 200],
    ['204', 'GET', 'HTTP/1.1 204 No Content\r\n\r\n', 204],
    ['304', 'GET', 'HTTP/1.1 304 Not Modified\r\netag: "x"\r\n\r\n', 304],
    ['200 with content-length 0', 'GET', 'HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n', 200],
  ];

  it.each(complete)(
    'ok/a bodiless answer (%s) is written at once, counted as its status',
    async (_n, method, head, status) => {
      script = (request) => request.tls.write(head);
      const before = { status: await counted(String(status)), late: await counted('504') };
      const seen = await bodiless(method, `/bodiless-${status}`);
      expect(seen).toEqual({ status, body: '' });
      expect(await counted(String(status))).toBe(before.status + 1);
      expect(await counted('504')).toBe(before.late);
    },
  );
});
