// HTTP/1.1 pipelining at the gateway's public listener is bounded per connection. node:http parses every request a
// connection sends while earlier answers are still due: 20,000 pipelined GETs to a route without sign-in grew the
// gateway's heap by 100 MB and starved that route for everyone (found in review). Past MAX_PIPELINED_REQUESTS
// unanswered requests a request is answered 429 at its turn, the connection closes after it, and it is never handled.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_PIPELINED_REQUESTS } from '../../src/sidecar/pipeline/rejections.js';
import { type BadMesh, h1Exchange, startBadMesh } from '../helpers/gateway-bad-service.js';
import { waitFor } from '../helpers/wait.js';

describe('gateway: HTTP/1.1 pipelining', () => {
  let m: BadMesh;
  beforeAll(async () => {
    m = await startBadMesh();
  });
  afterAll(async () => {
    await m?.close();
  });

  it('fail/requests past the bound are refused, counted, and never reach the service', async () => {
    const sent = MAX_PIPELINED_REQUESTS + 24;
    const requests = Array.from(
      { length: sent },
      (_, i) => `GET /bad/stall-head?n=${i} HTTP/1.1\r\nHost: 127.0.0.1:${m.port}\r\n\r\n`,
    ).join('');
    const exchange = h1Exchange(m.port, m.mesh.files.caPem, requests, 3_000);
    const metric = 'meshauth_connections_rejected_total{direction="edge",reason="pipelined"}';
    await waitFor('a pipelined request refused', async () =>
      (await m.mesh.metrics.registry.metrics()).includes(metric),
    );
    await exchange;
    // Counted once for the connection, however many requests followed.
    expect(await m.mesh.metrics.registry.metrics()).toContain(`${metric} 1\n`);
    // At most the bound reached the service (its answers are held: none of them ever finished).
    expect(m.badApp.arriving.length).toBeLessThanOrEqual(MAX_PIPELINED_REQUESTS);
  });
});
