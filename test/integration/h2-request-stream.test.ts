// requestStream (platform/h2-request.ts) starts node:http2 client requests with AsyncResource's bind swapped for the
// duration of the call: requests with and without a body, and one made while the session is still connecting (its
// start is queued until 'connect'), are answered; the bind in place before the call (Node's, or a wrapper installed
// later) is back after every call, also one on a session already destroyed; a bind that cannot be written leaves the
// call as it is.
import { AsyncResource } from 'node:async_hooks';
import { type ClientHttp2Session, type ClientHttp2Stream, connect, createServer, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bindInScope, requestStream } from '../../src/platform/h2-request.js';

const nodeBind = AsyncResource.prototype.bind;

/** The answer's status and body (the server echoes the method and the request body). */
function answer(stream: ClientHttp2Stream): Promise<{ status: unknown; body: string }> {
  return new Promise((resolve, reject) => {
    let status: unknown;
    let body = '';
    stream.on('response', (headers) => {
      status = headers[':status'];
    });
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      body += chunk;
    });
    stream.on('end', () => resolve({ status, body }));
    stream.on('error', reject);
  });
}

describe('requestStream', () => {
  let server: Http2Server;
  let url: string;
  const sessions: ClientHttp2Session[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => {
        body += chunk;
      });
      req.on('end', () => res.end(`${req.method} ${body}`));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const session of sessions) session.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  function session(): ClientHttp2Session {
    const opened = connect(url);
    opened.on('error', () => undefined);
    sessions.push(opened);
    return opened;
  }

  it('a request made while the session connects starts on connect and is answered; bind is restored at once', async () => {
    const connecting = session();
    expect(connecting.connecting).toBe(true);
    const stream = requestStream(connecting, { ':method': 'GET', ':path': '/' }, true);
    expect(AsyncResource.prototype.bind).toBe(nodeBind);
    expect(await answer(stream)).toEqual({ status: 200, body: 'GET ' });
  });

  it('a request with a body sends it and ends it; one without ends the stream at once', async () => {
    const open = session();
    await new Promise((resolve) => open.once('connect', resolve));
    const upload = requestStream(open, { ':method': 'POST', ':path': '/' }, false);
    upload.end('payload');
    expect(await answer(upload)).toEqual({ status: 200, body: 'POST payload' });
    const bodiless = requestStream(open, { ':method': 'GET', ':path': '/' }, true);
    expect(bodiless.writableEnded).toBe(true);
    expect(await answer(bodiless)).toEqual({ status: 200, body: 'GET ' });
    expect(AsyncResource.prototype.bind).toBe(nodeBind);
  });

  it('the swap is in place during request() and only then; a bind installed after import is the one put back', async () => {
    const open = session();
    await new Promise((resolve) => open.once('connect', resolve));
    let during: unknown;
    const request = open.request;
    open.request = function (this: ClientHttp2Session, ...args: Parameters<ClientHttp2Session['request']>) {
      during = AsyncResource.prototype.bind;
      return request.apply(this, args);
    } as ClientHttp2Session['request'];
    const wrapper = function (this: AsyncResource, ...args: Parameters<typeof nodeBind>) {
      return nodeBind.apply(this, args);
    } as typeof nodeBind;
    AsyncResource.prototype.bind = wrapper;
    try {
      const stream = requestStream(open, { ':method': 'GET', ':path': '/' }, true);
      expect(during).toBe(bindInScope);
      expect(AsyncResource.prototype.bind).toBe(wrapper);
      expect(await answer(stream)).toEqual({ status: 200, body: 'GET ' });
    } finally {
      AsyncResource.prototype.bind = nodeBind;
    }
  });

  it('a bind that cannot be written (a frozen prototype) leaves request() as it is', async () => {
    const open = session();
    await new Promise((resolve) => open.once('connect', resolve));
    Object.defineProperty(AsyncResource.prototype, 'bind', { value: nodeBind, writable: false, configurable: true });
    try {
      const stream = requestStream(open, { ':method': 'GET', ':path': '/' }, true);
      expect(await answer(stream)).toEqual({ status: 200, body: 'GET ' });
    } finally {
      Object.defineProperty(AsyncResource.prototype, 'bind', { value: nodeBind, writable: true, configurable: true });
    }
    expect(AsyncResource.prototype.bind).toBe(nodeBind);
  });

  it('a request on a destroyed session fails (Node 20 throws, later versions fail the stream); bind is restored', async () => {
    const gone = session();
    gone.destroy();
    let failure: unknown;
    try {
      const stream = requestStream(gone, { ':method': 'GET', ':path': '/' }, true);
      failure = await answer(stream).then(
        () => undefined,
        (error: unknown) => error,
      );
    } catch (error) {
      failure = error;
    }
    expect((failure as { code?: string } | undefined)?.code).toBe('ERR_HTTP2_INVALID_SESSION');
    expect(AsyncResource.prototype.bind).toBe(nodeBind);
  });
});
