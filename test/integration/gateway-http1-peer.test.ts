// A gateway route whose peer speaks only HTTP/1.1 (ALPN), e.g. an mTLS server that is not a meshauth sidecar: the
// gateway's in-process outbound carries the request over the endpoint's HTTP/1.1 pool, filters the answer as for an
// h2 peer (no Set-Cookie for the gateway's cookies, no hop-by-hop headers), and never frames a cut body as complete.
import type { TLSSocket } from 'node:tls';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayMesh, type GatewayWithHttp1Peer, startGatewayWithHttp1Peer } from '../helpers/gateway-mesh.js';
import { rawH2Client } from '../helpers/raw-h2-client.js';
import { eventually } from '../helpers/wait.js';

const HEADERS = 0x1;
const DATA = 0x0;
const RST_STREAM = 0x3;
const END_STREAM = 0x1;

describe('gateway → a peer that speaks only HTTP/1.1', () => {
  let mesh: GatewayMesh;
  let started: GatewayWithHttp1Peer | undefined;
  let port: number;
  const seen: string[] = [];
  beforeAll(async () => {
    started = await startGatewayWithHttp1Peer((req, res) => {
      seen.push(`${req.method} ${req.url} ${(req.socket as TLSSocket).alpnProtocol}`);
      if (req.url === '/legacy/cut') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('partial');
        setTimeout(() => res.socket?.destroy(), 30);
        return;
      }
      res.writeHead(200, {
        'content-type': 'text/plain',
        'set-cookie': ['app=1; Path=/; Secure', '__Host-meshauth=planted; Path=/; Secure', '=__Host-meshauth=x'],
      });
      res.end('hello from http/1.1');
    });
    ({ mesh } = started);
    port = Number(new URL(mesh.origin).port);
  });
  afterAll(async () => {
    await started?.close();
  });

  it('ok/the request reaches the peer over HTTP/1.1; its cookies for the gateway are dropped, its own pass', async () => {
    const response = await fetchViaGateway('/legacy/hello');
    expect(response.status).toBe(200);
    expect(response.body).toBe('hello from http/1.1');
    expect(response.setCookie).toEqual(['app=1; Path=/; Secure']);
    expect(seen).toContain('GET /legacy/hello http/1.1');
  });

  it('fail/the peer cuts its response mid-body → the browser gets RST_STREAM, never END_STREAM', async () => {
    const client = await rawH2Client(port, mesh.files.caPem);
    try {
      client.headers(
        1,
        [
          [':method', 'GET'],
          [':scheme', 'https'],
          [':authority', `127.0.0.1:${port}`],
          [':path', '/legacy/cut'],
        ],
        true,
      );
      expect(await eventually(() => client.received.some((f) => f.stream === 1 && f.type === RST_STREAM))).toBe(true);
      const frames = client.received.filter((f) => f.stream === 1);
      expect(frames.some((f) => f.type === HEADERS)).toBe(true);
      expect(frames.some((f) => (f.type === DATA || f.type === HEADERS) && (f.flags & END_STREAM) !== 0)).toBe(false);
    } finally {
      client.close();
    }
  });

  async function fetchViaGateway(path: string): Promise<{ status: number; body: string; setCookie: string[] }> {
    const agent = new Agent({ connect: { ca: mesh.files.caPem } });
    try {
      const answer = await request(`${mesh.origin}${path}`, { dispatcher: agent });
      const setCookie = answer.headers['set-cookie'];
      return {
        status: answer.statusCode,
        body: await answer.body.text(),
        setCookie: setCookie === undefined ? [] : [setCookie].flat(),
      };
    } finally {
      await agent.close();
    }
  }
});
