// The whole gateway with its default limits (PUBLIC_LIMITS): an HTTP/2 client whose session nghttp2 stopped reading (a
// DATA frame over the frame size: GOAWAY(FRAME_SIZE_ERROR), then nothing read or written) while its request waits on a
// service that never answers. The edge resets the request's stream at its upstream timeout (2 s here), and the
// connection, with no stream left, stayed open until the 120 s idle timeout, counted and logged nowhere (found by a
// probe, 2026-12-07; the cases one by one, with small limits: gateway-h2-silent-client.test.ts). Now the reset stream
// asks the session for a PING, which goes unacknowledged: the session is destroyed, counted as silent_session with one
// warn line, and the gateway serves on. (Node 24's node:http2 ends such a session itself at once: h2_protocol_error.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PUBLIC_LIMITS } from '../../src/gateway/public-listener.js';
import { type BadMesh, h1Exchange, startBadMesh } from '../helpers/gateway-bad-service.js';
import { h2Frame, type RawH2Client, rawH2Client } from '../helpers/raw-h2-client.js';
import { waitFor } from '../helpers/wait.js';

const DATA = 0x0;
const GOAWAY = 0x7;
const FRAME_SIZE_ERROR = 0x6;
/** Node 24's node:http2 itself reports this frame as a session error (measured); Node 20's hears nothing of it. */
const REASON = Number(process.versions.node.split('.')[0]) >= 24 ? 'h2_protocol_error' : 'silent_session';
/** Past the check and its grace, and far short of the idle timeout. */
const WAIT_MS = PUBLIC_LIMITS.streamIdleCheckMs + PUBLIC_LIMITS.silentSessionGraceMs + 10_000;

describe('gateway: an HTTP/2 session nghttp2 stopped reading, request in flight', () => {
  let m: BadMesh;
  let client: RawH2Client | undefined;
  beforeAll(async () => {
    m = await startBadMesh();
  });
  afterAll(async () => {
    client?.close();
    await m?.close();
  });

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
    await waitFor('the connection closed by the gateway', () => c.socket.destroyed, WAIT_MS, 100);
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
