// The whole gateway with its default limits (PUBLIC_LIMITS): an HTTP/2 client whose session nghttp2 stopped reading (a
// DATA frame over the frame size: GOAWAY(FRAME_SIZE_ERROR), then nothing read or written) while its request waits on a
// service that never answers. At its upstream timeout (2 s here) the edge answers the stalled upload, an answer that
// can never go out: it is reset after ERROR_ANSWER_DEADLINE_MS, and the connection, with no stream left, stayed open
// until the 120 s idle timeout, counted and logged nowhere (found by a probe, 2026-12-07; the cases one by one, with
// small limits: gateway-h2-silent-client.test.ts). Now the reset stream asks the session for a PING, which goes
// unacknowledged: the session is destroyed, counted as silent_session with one warn line, and the gateway serves on.
// (Node 24's node:http2 ends such a session itself at once: h2_protocol_error.)
// The answer deadline and the grace (10 s and 20 s) are setTimeouts: faked, and the fake clock driven past them, so the
// defaults the gateway gives its public listener are what runs out, without 30 s of wall time (the small-limit twin
// cannot show that the gateway leaves them in place). node:http2's own timers (the 2 s upstream timeout, the 10 s
// stream idle check) are not faked: a close that only the idle check would bring fails here.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PUBLIC_LIMITS } from '../../src/gateway/public-listener.js';
import { ERROR_ANSWER_DEADLINE_MS } from '../../src/sidecar/error-response.js';
import { type BadMesh, h1Exchange, startBadMesh } from '../helpers/gateway-bad-service.js';
import { driveFakeClock, h2Frame, type RawH2Client, rawH2Client, realUntil } from '../helpers/raw-h2-client.js';
import { waitFor } from '../helpers/wait.js';

const DATA = 0x0;
const GOAWAY = 0x7;
const FRAME_SIZE_ERROR = 0x6;
/** Node 24's node:http2 itself reports this frame as a session error (measured); Node 20's hears nothing of it. */
const REASON = Number(process.versions.node.split('.')[0]) >= 24 ? 'h2_protocol_error' : 'silent_session';
/** Of fake time from the edge's answer: past the answer deadline and the grace, and far short of the idle timeout. */
const WAIT_MS = ERROR_ANSWER_DEADLINE_MS + PUBLIC_LIMITS.silentSessionGraceMs + 10_000;

describe('gateway: an HTTP/2 session nghttp2 stopped reading, request in flight', () => {
  let m: BadMesh;
  let client: RawH2Client | undefined;
  beforeAll(async () => {
    m = await startBadMesh();
  });
  afterAll(async () => {
    vi.useRealTimers();
    client?.close();
    await m?.close();
  });

  const answered = async () =>
    (await m.mesh.metrics.gatewayRequests.get()).values.some((v) => v.labels.route === 'bad' && v.value > 0);

  it('fail/a frame over the frame size after a request to a stalled service → connection closed before the idle timeout, counted and logged once', async () => {
    expect(WAIT_MS).toBeLessThan(PUBLIC_LIMITS.idleTimeoutMs);
    const c = await rawH2Client(m.port, m.mesh.files.caPem);
    client = c;
    const arrived = m.badApp.arriving.length;
    c.headers(1, [
      [':method', 'POST'],
      [':scheme', 'https'],
      [':authority', `127.0.0.1:${m.port}`],
      [':path', '/bad/stall-head'],
    ]);
    c.data(1, 'x');
    await waitFor('the request at the service', () => m.badApp.arriving.length > arrived, 5_000);
    c.socket.write(h2Frame(DATA, 0, 1, Buffer.alloc(20_000)));
    const goaway = await waitFor('GOAWAY', () => c.received.find((f) => f.type === GOAWAY));
    expect(goaway.payload.readUInt32BE(4)).toBe(FRAME_SIZE_ERROR);
    // Only setTimeout is faked, from here: the upstream timeout is node:http2's own stream timer (real, 2 s), and the
    // answer deadline and the grace the edge arms after it are the fake timers driven below.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      expect(await realUntil(async () => c.socket.destroyed || (await answered()), 15_000), 'the edge answered').toBe(
        true,
      );
      await driveFakeClock(() => c.socket.destroyed, WAIT_MS, 100);
    } finally {
      vi.useRealTimers();
    }
    // The close itself may take a few more turns (real time: the socket's end); the fake clock has stopped.
    await waitFor('the connection closed by the gateway', () => c.socket.destroyed, 5_000);
    const counted = (await m.mesh.metrics.connectionsRejected.get()).values.filter(
      (v) => v.labels.direction === 'edge' && v.value > 0,
    );
    expect(counted.map((v) => [v.labels.reason, v.value])).toEqual([[REASON, 1]]);
    expect(m.mesh.log.find({ event: 'gateway_connection_closed' }).map((line) => line.reason)).toEqual([REASON]);
    const after = await h1Exchange(
      m.port,
      m.mesh.files.caPem,
      'GET /bad/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n',
    );
    expect(after.text.startsWith('HTTP/1.1 200')).toBe(true);
  }, 60_000);
});
