// HTTP/1.1 pipelining at the outbound listener. Found in review: node:http parses every request an app connection
// pipelines while the earlier answers are still due, and each one became an exchange holding a peer stream (queued
// by nghttp2 past the peer's stream limit) until answered: one local connection of 5.6 MB grew the sidecar past
// 1 GB RSS, nothing refused, counted or logged. And a request queued behind another was still sent to the peer after
// the app had closed its connection: node:http tells only the response being written that its socket closed.
// Now: past MAX_PIPELINED_REQUESTS unanswered requests, a request is answered 429 MESHAUTH_ERR_RATE_LIMITED at its
// turn, never sent, and the connection closes after it (counted and logged once); and when the app's connection
// closes, every exchange on it not yet answered is cancelled at the peer (HTTP/2 stream or HTTP/1.1 pool alike).
import type { ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_PIPELINED_REQUESTS } from '../../src/sidecar/pipeline/rejections.js';
import { captureLogger, metricValue } from '../helpers/fault-harness.js';
import { type SidecarPair, startPair } from '../helpers/sidecar-harness.js';
import { rawClient } from '../helpers/tcp-client.js';
import { TestCa } from '../helpers/test-ca.js';
import { eventually, until, waitFor } from '../helpers/wait.js';

const RATE_LIMITED = 'code="MESHAUTH_ERR_RATE_LIMITED"';

describe.each([
  { peer: 'HTTP/2', http1: false },
  { peer: 'HTTP/1.1', http1: true },
])('outbound: HTTP/1.1 pipelining from the app, $peer to the peer', ({ http1 }) => {
  let ca: TestCa;

  beforeAll(async () => {
    ca = await TestCa.create();
  });

  describe('the bound', () => {
    let pair: SidecarPair;
    const log = captureLogger('sidecar-a');
    const held: ServerResponse[] = [];
    let released = false;
    const answer = (res: ServerResponse) => res.writeHead(200, { 'content-length': '2' }).end('ok');

    beforeAll(async () => {
      // App B holds every answer until the test releases them: the pipelined requests stay unanswered meanwhile.
      pair = await startPair(ca, {
        http1,
        loggerA: log.logger,
        appHandler: (_req, res) => {
          if (released) answer(res);
          else held.push(res);
        },
      });
    });
    afterAll(async () => {
      for (const res of held) res.destroy();
      await pair?.close();
    });

    it('fail/requests past the bound are answered 429 at their turn, the connection closes, the peer never sees them', async () => {
      const { socket, closed, received } = await rawClient(pair.a.sidecar.outboundPort);
      const sent = MAX_PIPELINED_REQUESTS + 24;
      socket.write(
        Array.from({ length: sent }, (_, i) => `GET http://b.mesh/p/${i} HTTP/1.1\r\nHost: b.mesh\r\n\r\n`).join(''),
      );
      await waitFor(
        'a pipelined request refused',
        async () => (await metricValue(pair.a, 'meshauth_requests_rejected_total', RATE_LIMITED)) > 0,
      );
      released = true;
      for (const res of held.splice(0)) answer(res);
      await closed;
      const text = received().toString('latin1');
      const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
      expect(statuses.slice(0, MAX_PIPELINED_REQUESTS)).toEqual(Array(MAX_PIPELINED_REQUESTS).fill('200'));
      expect(statuses[MAX_PIPELINED_REQUESTS]).toBe('429');
      expect(statuses.length).toBe(MAX_PIPELINED_REQUESTS + 1); // the connection closed after the first 429
      expect(text).toContain('MESHAUTH_ERR_RATE_LIMITED');
      const urls = pair.appB.seen.map((s) => s.url).sort((x, y) => Number(x.slice(3)) - Number(y.slice(3)));
      expect(urls).toEqual(Array.from({ length: MAX_PIPELINED_REQUESTS }, (_, i) => `/p/${i}`));
      // Counted and logged once for the connection, however many requests followed.
      expect(
        await metricValue(pair.a, 'meshauth_requests_rejected_total', `direction="outbound",${RATE_LIMITED}`),
      ).toBe(1);
      const lines = log.records().filter((r) => r.code === 'MESHAUTH_ERR_RATE_LIMITED');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ direction: 'outbound', reason: 'pipelined', status: 429 });
    });
  });

  describe('a request sent after the refusal', () => {
    let pair: SidecarPair;
    let last: ServerResponse | undefined;
    const lastIndex = MAX_PIPELINED_REQUESTS - 1;

    beforeAll(async () => {
      // App B answers at once, except the last request within the bound: the answers before it are written, the
      // refusal waits behind it.
      pair = await startPair(ca, {
        http1,
        appHandler: (req, res) => {
          if (req.url === `/p/${lastIndex}`) last = res;
          else res.writeHead(200, { 'content-length': '2' }).end('ok');
        },
      });
    });
    afterAll(async () => {
      last?.destroy();
      await pair?.close();
    });

    it('fail/a request behind the 429 is refused too, never sent, though fewer are unanswered by then', async () => {
      const { socket, closed, received } = await rawClient(pair.a.sidecar.outboundPort);
      const text = () => received().toString('latin1');
      socket.write(
        Array.from(
          { length: MAX_PIPELINED_REQUESTS + 1 },
          (_, i) => `GET http://b.mesh/p/${i} HTTP/1.1\r\nHost: b.mesh\r\n\r\n`,
        ).join(''),
      );
      await until(
        'the answers before the held one written',
        () => text().split('HTTP/1.1 200').length - 1 === lastIndex,
      );
      expect(await metricValue(pair.a, 'meshauth_requests_rejected_total', RATE_LIMITED)).toBe(1);
      // Two requests are unanswered now (the held one and the refusal), yet the connection closes after the 429.
      socket.write('GET http://b.mesh/late HTTP/1.1\r\nHost: b.mesh\r\n\r\n');
      // Negative window: a request started reaches app B within milliseconds (the session to B is open).
      const reached = await eventually(() => pair.appB.arriving.some((a) => a.url === '/late'), 500);
      expect(reached).toBe(false);
      (last as ServerResponse).writeHead(200, { 'content-length': '2' }).end('ok');
      await closed;
      const statuses = [...text().matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
      expect(statuses).toEqual([...Array(MAX_PIPELINED_REQUESTS).fill('200'), '429']);
      expect(pair.appB.arriving.map((a) => a.url)).not.toContain('/late');
      expect(await metricValue(pair.a, 'meshauth_requests_rejected_total', RATE_LIMITED)).toBe(1);
    });
  });

  describe('a connection closed with requests queued', () => {
    let pair: SidecarPair;
    const held: ServerResponse[] = [];
    const closedAtB: string[] = [];

    beforeAll(async () => {
      // B passes one of A's requests at a time to its app (one app connection); the others wait at B, in order, for
      // that slot. App B holds each answer except the marker's: what B still holds is what A has not cancelled.
      pair = await startPair(ca, {
        http1,
        inboundLimitsB: { appConnections: 1 },
        appHandler: (req, res) => {
          if (req.url === '/marker') {
            res.writeHead(200, { 'content-length': '2' }).end('ok');
            return;
          }
          held.push(res);
          res.once('close', () => closedAtB.push(req.url ?? ''));
        },
      });
    });
    afterAll(async () => {
      for (const res of held) res.destroy();
      await pair?.close();
    });

    it('fail/every exchange of the closed connection is cancelled at the peer, none reaches its app afterwards', async () => {
      const socket = connect(pair.a.sidecar.outboundPort, '127.0.0.1');
      socket.on('error', () => undefined);
      socket.write(
        Array.from({ length: 8 }, (_, i) => `GET http://b.mesh/q/${i} HTTP/1.1\r\nHost: b.mesh\r\n\r\n`).join(''),
      );
      await until('the first request at app B', () => pair.appB.arriving.length === 1);
      socket.destroy();
      await until('app B saw the request being answered aborted', () => closedAtB.length === 1);
      // A request sent afterwards waits at B behind whatever of the closed connection B still holds: it reaches app B
      // next only if all of those were cancelled.
      const marker = connect(pair.a.sidecar.outboundPort, '127.0.0.1');
      let answer = '';
      marker.on('data', (d: Buffer) => {
        answer += d.toString('latin1');
      });
      marker.write('GET http://b.mesh/marker HTTP/1.1\r\nHost: b.mesh\r\nConnection: close\r\n\r\n');
      await waitFor('the marker at app B', () => pair.appB.arriving.some((a) => a.url === '/marker'), 10_000);
      expect(pair.appB.arriving.map((a) => a.url)).toEqual(['/q/0', '/marker']);
      expect(closedAtB).toEqual(['/q/0']);
      await until('the marker answered', () => answer.includes('\r\n\r\nok'));
      expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    });
  });
});
