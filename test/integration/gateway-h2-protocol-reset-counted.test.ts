// An HTTP/2 request at the gateway whose body is shorter than its content-length: nghttp2 resets the stream with
// PROTOCOL_ERROR at its END_STREAM. Toward an HTTP/2 peer, a reset that reached the gateway before the body was
// attached to the peer stream (the first request, while the peer session was being set up) was counted nowhere and
// logged nowhere: H2Exchange took the close for a browser going away; once attached, the same stream was counted as
// a 400 `body_incomplete`. Toward an HTTP/1.1 peer it was never counted (the close aborted the pool request, whose
// failure is then ignored as a browser that left). Found by an outside review (2026-12-03) with raw frames (HEADERS
// and DATA in one write): RST_STREAM(PROTOCOL_ERROR) on the wire, only the edge's allow decision in the metrics.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type GatewayMesh,
  type GatewayWithHttp1Peer,
  startGatewayMesh,
  startGatewayWithHttp1Peer,
} from '../helpers/gateway-mesh.js';
import { rawH2Client, sendShortBody } from '../helpers/raw-h2-client.js';
import { eventually } from '../helpers/wait.js';

const PROTOCOL_ERROR = 0x1;

/** Incomplete request bodies counted by the gateway, and their log lines. */
async function incomplete(mesh: GatewayMesh): Promise<{ counted: number; lines: number }> {
  const counted = (await mesh.metrics.requestsRejected.get()).values
    .filter((v) => v.labels.code === 'MESHAUTH_ERR_BAD_REQUEST')
    .reduce((sum, v) => sum + v.value, 0);
  return { counted, lines: mesh.log.find({ reason: 'body_incomplete' }).length };
}

/** HEADERS (content-length 10) and 5 body bytes with END_STREAM in one write; resolves with the RST code. */
async function shortBody(mesh: GatewayMesh, path: string): Promise<number | undefined> {
  const port = Number(new URL(mesh.origin).port);
  return sendShortBody(await rawH2Client(port, mesh.files.caPem), [
    [':method', 'POST'],
    [':scheme', 'https'],
    [':authority', `127.0.0.1:${port}`],
    [':path', path],
    ['content-type', 'text/plain'],
  ]);
}

describe('gateway: an HTTP/2 body shorter than its content-length, peer over HTTP/2', () => {
  let mesh: GatewayMesh;
  beforeAll(async () => {
    mesh = await startGatewayMesh({
      gateway: (base) => ({
        ...base,
        routes: (base.routes as Record<string, unknown>[]).map((route) => ({ ...route, login: 'none' })),
      }),
    });
  });
  afterAll(async () => {
    await mesh?.close();
  });

  it.each(['/short-1', '/short-2', '/short-3'])(
    'fail/%s: RST_STREAM(PROTOCOL_ERROR), counted once as body_incomplete with one line, never complete at the service',
    async (path) => {
      const before = await incomplete(mesh);
      expect(await shortBody(mesh, path)).toBe(PROTOCOL_ERROR);
      expect(await eventually(async () => (await incomplete(mesh)).counted > before.counted)).toBe(true);
      expect(await incomplete(mesh)).toEqual({ counted: before.counted + 1, lines: before.lines + 1 });
      expect(mesh.webApp.seen.map((s) => s.url)).not.toContain(path);
    },
  );
});

describe('gateway: an HTTP/2 body shorter than its content-length, peer over HTTP/1.1', () => {
  let started: GatewayWithHttp1Peer | undefined;
  const complete: string[] = [];
  beforeAll(async () => {
    started = await startGatewayWithHttp1Peer((req, res) => {
      req.resume();
      req.once('end', () => complete.push(req.url ?? ''));
      req.once('end', () => res.end('ok'));
    });
  });
  afterAll(async () => {
    await started?.close();
  });

  it.each(['/legacy/short-1', '/legacy/short-2'])(
    'fail/%s: RST_STREAM(PROTOCOL_ERROR), counted once as body_incomplete with one line, never complete at the peer',
    async (path) => {
      const mesh = (started as GatewayWithHttp1Peer).mesh;
      const before = await incomplete(mesh);
      expect(await shortBody(mesh, path)).toBe(PROTOCOL_ERROR);
      expect(await eventually(async () => (await incomplete(mesh)).counted > before.counted)).toBe(true);
      expect(await incomplete(mesh)).toEqual({ counted: before.counted + 1, lines: before.lines + 1 });
      expect(complete).not.toContain(path);
    },
  );
});
