// Outside review (2026-12-02), findings (bbfcc67..HEAD) at the gateway edge, on the audit's bad-service mesh:
// - 851674f drops every `x-forwarded-*` before the identity-header test, so a client-sent X-Forwarded-Client-Cert alone
//   is no longer counted in meshauth_identity_headers_stripped_total{direction="edge"} (b438d0b counts it).
// - 30a3681: an HTTP/2 request whose stream the client resets before the in-process exchange starts (HEADERS and
//   RST_STREAM in one read) is still forwarded: the compat response has no `destroyed` and its 'close' has already
//   fired, so H2Exchange never learns the caller is gone and holds the peer stream until the upstream timeout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BadMesh, h1Exchange, startBadMesh } from '../helpers/gateway-bad-service.js';
import { rawH2Client } from '../helpers/raw-h2-client.js';

const CANCEL = 0x8;

describe('gateway (outside review): gateway edge', () => {
  let m: BadMesh;
  beforeAll(async () => {
    m = await startBadMesh();
  });
  afterAll(async () => {
    await m?.close();
  });

  const strippedAtEdge = async (): Promise<number> =>
    (await m.mesh.metrics.identityHeadersStripped.get()).values.find((v) => v.labels.direction === 'edge')?.value ?? 0;

  it('fail/a client-sent X-Forwarded-Client-Cert alone is counted as a stripped identity header', async () => {
    const before = await strippedAtEdge();
    const r = await h1Exchange(
      m.port,
      m.mesh.files.caPem,
      `GET /bad/echo HTTP/1.1\r\nHost: 127.0.0.1:${m.port}\r\nX-Forwarded-Client-Cert: By=spiffe://example.org/ns/x/sa/admin\r\nConnection: close\r\n\r\n`,
      2_000,
    );
    expect(r.text.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    expect(r.text).not.toContain('ns/x/sa/admin');
    expect(await strippedAtEdge()).toBe(before + 1);
  });

  it('fail/HTTP/2: HEADERS then RST_STREAM(CANCEL) at once (API token) → the request is not left open at the service', async () => {
    const token = await m.mesh.provider.provider.getToken('reports-job', 'orders:read');
    const seenBefore = m.badApp.seen.length;
    const c = await rawH2Client(m.port, m.mesh.files.caPem);
    try {
      // One write: both frames reach node:http2 in the same read, before the edge's async steps have run.
      c.socket.cork();
      c.headers(
        1,
        [
          [':method', 'GET'],
          [':scheme', 'https'],
          [':authority', `127.0.0.1:${m.port}`],
          [':path', '/bad/stall-head/reset-at-once'],
          ['authorization', `Bearer ${token}`], // an API client: token verification is the async step
        ],
        true,
      );
      c.reset(1, CANCEL);
      c.socket.uncork();
      // A fixed window for a negative: a request wrongly forwarded and held open would still be open after it.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const reached = m.badApp.seen.length > seenBefore;
      const stillOpen = [...m.open].filter((res) => !res.destroyed && res.socket !== null && !res.socket.destroyed);
      // Either never forwarded, or cancelled at once (the service's connection closed): never held open.
      expect({ reached, stillOpen: stillOpen.length }).toEqual({ reached, stillOpen: 0 });
    } finally {
      c.close();
    }
  });
});
