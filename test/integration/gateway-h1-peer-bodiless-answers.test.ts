// Answers without content (204, 304, the answer to a HEAD) from a route's HTTP/1.1-only peer reach the browser as
// their head alone, complete, over HTTP/1.1 and HTTP/2, and count as answered, not as cut responses.
// Found in review: a 304 that kept its representation's Content-Length (RFC 9110 §8.6 allows it) made undici fail
// the body after the head; the gateway piped that failure into the browser's response and destroyed it before
// node:http had flushed the 304, so an HTTP/1.1 browser got a connection reset instead of a cache revalidation, and
// the answer was counted as `peer_response_truncated` with a warning.
import { connect as h2Connect, type IncomingHttpHeaders } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayMesh, type GatewayWithHttp1Peer, startGatewayWithHttp1Peer } from '../helpers/gateway-mesh.js';

interface H1Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
  readonly error?: string;
}

describe('gateway → HTTP/1.1-only peer: answers without content', () => {
  let mesh: GatewayMesh;
  let started: GatewayWithHttp1Peer | undefined;
  beforeAll(async () => {
    started = await startGatewayWithHttp1Peer((req, res) => {
      if (req.url === '/legacy/not-modified') {
        // node:http sends no body for a 304 but keeps the Content-Length it is given.
        res.writeHead(304, { etag: '"v1"', 'content-length': '5' });
        res.end();
        return;
      }
      if (req.url === '/legacy/no-content-stated') {
        res.writeHead(204, { 'content-length': '5' }); // not allowed, but said by some apps
        res.end();
        return;
      }
      if (req.url === '/legacy/no-content') {
        res.writeHead(204, { 'x-probe': 'empty' });
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' });
      res.end('hello');
    });
    ({ mesh } = started);
  });
  afterAll(async () => {
    await started?.close();
  });

  function h1(path: string, method = 'GET'): Promise<H1Answer> {
    const url = new URL(path, mesh.origin);
    return new Promise((resolve) => {
      const req = httpsRequest(
        { host: url.hostname, port: url.port, path, method, ca: mesh.files.caPem, agent: false, timeout: 5_000 },
        (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
          res.on('error', (e) =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body, error: e.message }),
          );
        },
      );
      req.on('error', (e: Error & { code?: string }) =>
        resolve({ status: 0, headers: {}, body: '', error: e.code ?? e.message }),
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.end();
    });
  }

  function h2(path: string): Promise<{ status: number; ended: boolean; rstCode: number | undefined }> {
    const session = h2Connect(mesh.origin, { ca: mesh.files.caPem });
    session.on('error', () => undefined);
    return new Promise((resolve) => {
      const stream = session.request({ ':method': 'GET', ':path': path }, { endStream: true });
      let status = 0;
      let ended = false;
      const timer = setTimeout(() => stream.close(), 5_000);
      stream.on('response', (h: IncomingHttpHeaders) => (status = Number(h[':status'])));
      stream.on('data', () => undefined);
      stream.on('end', () => (ended = true));
      stream.on('error', () => undefined);
      stream.on('close', () => {
        clearTimeout(timer);
        session.close();
        resolve({ status, ended, rstCode: stream.rstCode });
      });
    });
  }

  async function truncations(): Promise<number> {
    const values = (await mesh.metrics.streamsReset.get()).values;
    return values.filter((v) => v.labels.reason === 'peer_response_truncated').reduce((sum, v) => sum + v.value, 0);
  }

  it('ok/a 304 with its representation’s Content-Length reaches an HTTP/1.1 browser as a 304', async () => {
    const got = await h1('/legacy/not-modified');
    expect(got.error).toBeUndefined();
    expect(got.status).toBe(304);
    expect(got.headers.etag).toBe('"v1"');
    expect(got.body).toBe('');
  });

  it('ok/the same 304 reaches an HTTP/2 browser ended at its head', async () => {
    const got = await h2('/legacy/not-modified');
    expect(got).toMatchObject({ status: 304, ended: true, rstCode: 0 });
  });

  it('ok/a 204 reaches an HTTP/1.1 browser complete', async () => {
    const got = await h1('/legacy/no-content');
    expect(got.error).toBeUndefined();
    expect(got).toMatchObject({ status: 204, body: '' });
    expect(got.headers['x-probe']).toBe('empty');
  });

  // Found in review: the gateway passed a 204's Content-Length on; node:http2 then reset the browser's stream.
  it('ok/a 204 that states a Content-Length reaches either browser as a 204 without it', async () => {
    const got = await h1('/legacy/no-content-stated');
    expect(got.error).toBeUndefined();
    expect(got).toMatchObject({ status: 204, body: '' });
    expect(got.headers['content-length']).toBeUndefined();
    expect(await h2('/legacy/no-content-stated')).toMatchObject({ status: 204, ended: true, rstCode: 0 });
  });

  it('ok/a HEAD gets the peer’s head, its Content-Length and no body; the connection stays usable', async () => {
    const got = await h1('/legacy/page', 'HEAD');
    expect(got.error).toBeUndefined();
    expect(got).toMatchObject({ status: 200, body: '' });
    expect(got.headers['content-length']).toBe('5');
    expect(await h1('/legacy/page')).toMatchObject({ status: 200, body: 'hello' });
  });

  it('ok/none of these answers is counted as a response the peer cut', async () => {
    await h1('/legacy/not-modified');
    await h2('/legacy/not-modified');
    expect(await truncations()).toBe(0);
    expect(mesh.log.find({ reason: 'peer_response_truncated' })).toHaveLength(0);
  });
});
