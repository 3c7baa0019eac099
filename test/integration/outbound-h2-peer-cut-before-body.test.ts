// A response an HTTP/2 peer cuts after its head but before any body byte (found by a hostile-peer probe). node:http
// and the outbound's lean lane send a written head only with the first body byte, so the app got no status line at
// all (a connection closed: "socket hang up", curl's "empty reply"), while meshauth_requests_total counted the peer's
// 200 and nothing counted the reset. Now the outbound holds the peer's head until the first body byte: a stream cut
// before it is answered 502 MESHAUTH_ERR_UPSTREAM_PROTOCOL (504 when the peer went silent instead) and counted as
// that; a cut after body bytes went out is still a cut (never framed as complete), counted as a stream reset beside
// its 200.
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logLines } from '../helpers/log-lines.js';
import { callThroughOutbound } from '../helpers/outbound-call.js';
import { type RawH2Peer, type RawStream, startRawH2Peer } from '../helpers/raw-h2-peer.js';
import {
  durationSum,
  requestsCounted,
  startRoutedSidecar,
  streamsResetCounted,
  type TestSidecar,
} from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

const INTERNAL_ERROR = 0x2;
/** How long after its head the peer sends the body, in the late-body case (under the 600 ms outbound.timeout). */
const BODY_DELAY_MS = 400;

/** What the app's node:http client saw: a status and body, whether the body was cut, or no answer at all. */

describe('outbound: an HTTP/2 peer cuts its response after the head', () => {
  let peer: RawH2Peer;
  let a: TestSidecar;
  let script: (stream: RawStream) => void = () => undefined;
  const logs = logLines('outbound', 'info');

  beforeAll(async () => {
    const ca = await TestCa.create();
    const peerId = ca.idFor('/ns/b/sa/b');
    peer = await startRawH2Peer(await ca.issue({ id: peerId }), ca.bundlePem, { onStream: (s) => script(s) });
    a = await startRoutedSidecar(ca, peer.port, peerId, { outboundTimeout: '600ms' }, { logger: logs.logger });
  });
  afterAll(async () => {
    await a?.sidecar.close(0);
    await peer?.close();
  });

  const call = (method: 'GET' | 'POST', path: string, onData?: () => void) =>
    callThroughOutbound(a.sidecar.outboundPort, method, path, onData);

  const requests = (code: string) => requestsCounted(a.metrics, 'outbound', code);
  const resets = (reason: string) => streamsResetCounted(a.metrics, 'outbound', reason);

  it.each(['GET', 'POST'] as const)(
    'fail/%s: HEADERS(200) then RST_STREAM(INTERNAL_ERROR), no body → 502 UPSTREAM_PROTOCOL, counted as 502, not 200',
    async (method) => {
      script = (stream) => {
        stream.respond(200, { 'content-type': 'text/plain' });
        stream.reset(INTERNAL_ERROR);
      };
      const before = { ok: await requests('200'), bad: await requests('502'), lines: logs.lines.length };
      const seen = await call(method, `/reset-${method}`);
      expect(seen.error).toBeUndefined(); // before: "socket hang up", no status line at all
      expect(seen.status).toBe(502);
      expect(JSON.parse(seen.body)).toMatchObject({ code: 'MESHAUTH_ERR_UPSTREAM_PROTOCOL' });
      expect(await requests('200')).toBe(before.ok);
      expect(await requests('502')).toBe(before.bad + 1);
      const lines = logs.lines.slice(before.lines).filter((l) => l.code === 'MESHAUTH_ERR_UPSTREAM_PROTOCOL');
      expect(lines.map((l) => [l.reason, l.msg])).toEqual([
        [
          'response_cut',
          'request rejected: peer response cut after its head, before any body: the peer reset the stream ' +
            '(HTTP/2 code 2, INTERNAL_ERROR: the peer failed while handling the request)',
        ],
      ]);
    },
  );

  it('fail/HEADERS(200), then the connection closes → 502, and the GET is not sent again (the peer answered it)', async () => {
    script = (stream) => {
      stream.respond(200, { 'content-type': 'text/plain' });
      stream.connection.socket.end(); // after the head, in order: the client reads the head, then the end
    };
    const streamsBefore = peer.streams.length;
    const linesBefore = logs.lines.length;
    const seen = await call('GET', '/lost');
    expect(seen.status).toBe(502);
    expect(JSON.parse(seen.body)).toMatchObject({ code: 'MESHAUTH_ERR_UPSTREAM_PROTOCOL' });
    expect(peer.streams.length).toBe(streamsBefore + 1);
    expect(logs.lines.slice(linesBefore).find((l) => l.code === 'MESHAUTH_ERR_UPSTREAM_PROTOCOL')).toMatchObject({
      reason: 'response_cut',
      msg: 'request rejected: peer response cut after its head, before any body: the connection to the peer closed',
    });
  });

  it('fail/HEADERS(200), then nothing for outbound.timeout → 504, not a connection closed without a status line', async () => {
    script = (stream) => stream.respond(200, { 'content-type': 'text/plain' });
    const before = { ok: await requests('200'), late: await requests('504') };
    const seen = await call('GET', '/silent');
    expect(seen.status).toBe(504);
    expect(JSON.parse(seen.body)).toMatchObject({ code: 'MESHAUTH_ERR_UPSTREAM_TIMEOUT' });
    expect(await requests('200')).toBe(before.ok);
    expect(await requests('504')).toBe(before.late + 1);
  });

  it('fail/part of the body went out, then RST_STREAM → the app sees 200 cut short, counted with a reset beside it', async () => {
    let held: RawStream | undefined;
    script = (stream) => {
      held = stream;
      stream.respond(200, { 'content-type': 'text/plain' });
      stream.data('partial');
    };
    const before = {
      ok: await requests('200'),
      cut: await resets('peer_response_truncated'),
      lines: logs.lines.length,
    };
    // The reset follows the app's first body byte, so the head has gone out by then.
    const seen = await call('GET', '/partial', () => held?.reset(INTERNAL_ERROR));
    expect(seen).toMatchObject({ status: 200, body: 'partial', cut: true });
    expect(await requests('200')).toBe(before.ok + 1);
    expect(await resets('peer_response_truncated')).toBe(before.cut + 1); // before: counted as a clean 200 alone
    const line = logs.lines.slice(before.lines).find((l) => l.reason === 'peer_response_truncated');
    expect(line).toMatchObject({ msg: 'peer reset the stream mid-response; response to the app aborted', rstCode: 2 });
  });

  it('ok/the head, then the body a moment later → the whole answer, counted once as 200, timed to its head', async () => {
    let held: RawStream | undefined;
    script = (stream) => {
      held = stream;
      stream.respond(200, { 'content-type': 'text/plain', 'content-length': '5' });
    };
    const before = await requests('200');
    const durationBefore = await durationSum(a.metrics, 'outbound');
    const startedAt = performance.now();
    const answer = call('GET', '/late-body');
    await waitFor('the request at the peer', () => held !== undefined);
    // The body comes BODY_DELAY_MS after the head (within outbound.timeout): the request's duration ends at the head's
    // arrival, not at the first body byte the head was held for.
    await new Promise((resolve) => setTimeout(resolve, BODY_DELAY_MS));
    held?.data('hello', true);
    expect(await answer).toMatchObject({ status: 200, body: 'hello', cut: false });
    const totalSeconds = (performance.now() - startedAt) / 1000;
    expect(await requests('200')).toBe(before + 1);
    const observed = (await durationSum(a.metrics, 'outbound')) - durationBefore;
    expect(observed).toBeGreaterThan(0);
    expect(observed).toBeLessThan(totalSeconds - BODY_DELAY_MS / 2000);
  });
});
