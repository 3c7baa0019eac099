// The gateway's path to an HTTP/1.1-only peer retries a failed connect like the outbound does: a GET whose first
// TLS connection is reset is sent again and answered, and so is a POST, its body whole and once: a failed connect
// leaves the body untouched (no request byte was written). With undici's pool the POST was answered 503 instead, its
// `request` API destroying the body when the connect failed (found by a review: the retry then sent the destroyed
// body and failed the same way after one more useless connection).
import type { Server } from 'node:https';
import type { Socket } from 'node:net';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayMesh, type GatewayWithHttp1Peer, startGatewayWithHttp1Peer } from '../helpers/gateway-mesh.js';
import { waitFor } from '../helpers/wait.js';

describe('gateway → HTTP/1.1 peer, retry after a failed connect', () => {
  let mesh: GatewayMesh;
  let peer: Server;
  let started: GatewayWithHttp1Peer | undefined;
  let refuseNext = false;
  const seen: string[] = [];
  beforeAll(async () => {
    started = await startGatewayWithHttp1Peer(
      (req, res) => {
        let body = '';
        req.setEncoding('utf8');
        req.on('data', (chunk: string) => {
          body += chunk;
        });
        req.on('end', () => {
          seen.push(`${req.method} ${req.url} ${JSON.stringify(body)}`);
          res.setHeader('connection', 'close');
          res.end('ok');
        });
      },
      { keepAliveTimeout: 100 }, // the next request needs a new connection
    );
    ({ mesh, peer } = started);
    peer.on('connection', (socket: Socket) => {
      if (refuseNext) {
        refuseNext = false;
        socket.destroy();
      }
    });
  });
  afterAll(async () => {
    await started?.close();
  });

  /** The peer holds no connection: the next request needs a new one, which `refuseNext` resets. */
  const peerIdle = () =>
    waitFor(
      'the peer to hold no connection',
      () => new Promise<boolean>((resolve) => peer.getConnections((error, n) => resolve(!error && n === 0))),
    );

  async function send(method: string, path: string, body?: string) {
    const agent = new Agent({ connect: { ca: mesh.files.caPem } });
    try {
      const answer = await request(`${mesh.origin}${path}`, {
        dispatcher: agent,
        method: method as 'GET',
        headersTimeout: 5_000,
        bodyTimeout: 5_000,
        ...(body === undefined ? {} : { body, headers: { 'content-type': 'text/plain' } }),
      });
      return { status: answer.statusCode, body: await answer.body.text() };
    } catch (error) {
      return { status: 0, body: String(error) };
    } finally {
      await agent.close();
    }
  }

  it('ok/a GET whose first connect is reset is retried and answered', async () => {
    await peerIdle();
    refuseNext = true;
    const res = await send('GET', '/legacy/get');
    expect(res).toEqual({ status: 200, body: 'ok' });
    expect(seen).toContain('GET /legacy/get ""');
  });

  it('ok/a POST whose first connect is reset is retried and answered, its body sent whole and once', async () => {
    await peerIdle();
    refuseNext = true;
    let connections = 0;
    const count = () => {
      connections += 1;
    };
    peer.on('connection', count);
    const res = await send('POST', '/legacy/post', 'hello');
    peer.off('connection', count);
    expect(res).toEqual({ status: 200, body: 'ok' });
    expect(seen.filter((line) => line.startsWith('POST'))).toEqual(['POST /legacy/post "hello"']);
    expect(connections).toBe(2); // the reset one, and the one that carried it
  });
});
