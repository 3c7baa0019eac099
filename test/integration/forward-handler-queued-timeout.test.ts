// Found by a review: a request that waited in the HTTP/1.1 pool's queue past headTimeoutMs is answered 504 and
// dropped "when the pool would start it": ForwardHandler.onConnect then calls undici's abort(), which destroys the
// socket the request was handed to (client-h1 writeH1: util.destroy(socket)). That socket is a healthy kept-alive
// connection that just finished another response: every timed-out queued request costs one connection (and, to a
// peer, one new mTLS handshake for the next request) exactly when the pool is saturated.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Pool } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { DataPlaneTelemetry } from '../../src/sidecar/data-plane-telemetry.js';
import { ForwardHandler } from '../../src/sidecar/forward-handler.js';
import { classifyPeerError } from '../../src/sidecar/outbound/outbound-listener.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { waitFor } from '../helpers/wait.js';

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (closers.length > 0) await closers.pop()?.();
});

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

/** Sends one request through `pool` with a ForwardHandler writing into a real ServerResponse; resolves its status. */
async function viaHandler(pool: Pool, path: string, headTimeoutMs: number): Promise<number> {
  const front = createServer((_req: IncomingMessage, res: ServerResponse) => {
    const telemetry = new DataPlaneTelemetry('outbound', new Metrics(), silentLogger());
    const handler = new ForwardHandler(
      res,
      false,
      'peer',
      performance.now(),
      telemetry,
      classifyPeerError,
      {
        draining: false,
      },
      { headTimeoutMs },
    );
    pool.dispatch({ path, method: 'GET', headers: [] }, handler);
  });
  const port = await listen(front);
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5_000) });
    await res.arrayBuffer();
    return res.status;
  } finally {
    front.closeAllConnections();
    await new Promise((resolve) => front.close(resolve));
  }
}

describe('ForwardHandler headTimeoutMs with a queued request', () => {
  it('fail/a queued request that timed out does not cost the pool its kept connection', async () => {
    let connections = 0;
    const sockets = new Set<Socket>();
    const urls: string[] = [];
    const upstream = createServer((req, res) => {
      urls.push(req.url ?? '');
      if (req.url === '/slow') setTimeout(() => res.end('slow'), 400);
      else res.end('ok');
    });
    upstream.keepAliveTimeout = 10_000;
    upstream.on('connection', (socket: Socket) => {
      connections += 1;
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    const port = await listen(upstream);
    closers.push(
      () =>
        new Promise((resolve) => {
          upstream.closeAllConnections();
          upstream.close(resolve);
        }),
    );
    const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 1, keepAliveTimeout: 10_000 });
    closers.push(() => pool.destroy());

    // The pool's only connection is busy for 400 ms; a second request queues behind it and times out at 100 ms.
    const slow = viaHandler(pool, '/slow', 5_000);
    await waitFor('the upstream to hold /slow', () => urls.includes('/slow'));
    expect(await viaHandler(pool, '/queued', 100)).toBe(504);
    expect(await slow).toBe(200);
    // The pool has handed the dead request to the connection (nothing queued or running any more).
    await waitFor('the pool to dispatch the dead request', () => pool.stats.queued + pool.stats.running === 0);
    // A later request should ride the same kept connection.
    expect(await viaHandler(pool, '/after', 5_000)).toBe(200);
    expect(connections, 'connections the upstream accepted').toBe(1);
  }, 15_000);
});
