// The header lists requestHeadersOf / responseHeadersOf hand to node:http2, on the runtime the suite runs on (an
// array where it takes one, the object elsewhere), over a real session: what the other side reads is the same either
// way, a repeated field included. A release table that claimed support too early would fail every request here.
import { once } from 'node:events';
import { connect, createServer, type IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestHeadersOf, responseHeadersOf } from '../../src/platform/index.js';

describe('HTTP/2 header lists on this runtime', () => {
  const server = createServer();
  let port = 0;
  let seen: IncomingHttpHeaders | undefined;

  beforeAll(async () => {
    server.on('stream', (stream, headers) => {
      seen = headers;
      stream.respond(
        responseHeadersOf([
          ':status',
          '201',
          'set-cookie',
          'a=1',
          'x-one',
          'v',
          'set-cookie',
          'b=2',
          'content-length',
          '2',
        ]),
      );
      stream.end('ok');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((done) => server.close(() => done())));

  it('a request and its answer arrive with every field, repeated ones in order', async () => {
    const session = connect(`http://127.0.0.1:${port}`);
    try {
      const stream = session.request(
        requestHeadersOf([
          ':method',
          'GET',
          ':path',
          '/p?q=1',
          ':scheme',
          'http',
          ':authority',
          'b.mesh',
          'x-a',
          '1',
          'accept',
          '*/*',
          'x-a',
          '2',
        ]),
        { endStream: true },
      );
      const [response] = (await once(stream, 'response')) as [IncomingHttpHeaders];
      let body = '';
      stream.setEncoding('utf8');
      for await (const chunk of stream) body += chunk;
      expect(response[':status']).toBe(201);
      expect(response['set-cookie']).toEqual(['a=1', 'b=2']);
      expect(response['x-one']).toBe('v');
      expect(body).toBe('ok');
      expect(seen?.[':path']).toBe('/p?q=1');
      expect(seen?.[':authority']).toBe('b.mesh');
      expect(seen?.['x-a']).toBe('1, 2');
      expect(seen?.accept).toBe('*/*');
    } finally {
      session.close();
    }
  });
});
