// Request targets an inbound without a policy file cannot send the app, refused at the head check, counted, the app
// untouched:
// - `OPTIONS *` (asterisk form): the app hop takes only a path, so 400 target_form. It was admitted and then failed
//   at the app forward as 503 MESHAUTH_ERR_UPSTREAM_UNAVAILABLE, logged as the app being unavailable.
// - an h2 `:path` with a byte above 0x7E: nghttp2 passes it, and the app would get it in its HTTP/1.1 request line,
//   which no HTTP/1.1 caller could have sent (node:http refuses it with a 400). 400 bad_char. Printable ASCII the
//   HTTP/1.1 parser admits (a `#`, `%00`, quotes) reaches the app on both protocols alike.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { h2Answer, mtlsH2Session } from '../helpers/raw-app.js';
import { rawTlsExchange } from '../helpers/raw-tls.js';
import { type InboundServer, startInboundServer } from '../helpers/sidecar-harness.js';

describe('inbound without a policy: targets the app cannot be sent', () => {
  let server: InboundServer;

  beforeAll(async () => {
    server = await startInboundServer();
  });
  afterAll(async () => server?.close());

  const rejected = async (code: string) =>
    (await server.sidecar.metrics.requestsRejected.get()).values.find((v) => v.labels.code === code)?.value ?? 0;

  it('fail/OPTIONS * over HTTP/1.1 → 400 MESHAUTH_ERR_BAD_REQUEST, the app untouched', async () => {
    const seen = server.app.seen.length;
    const before = await rejected('MESHAUTH_ERR_BAD_REQUEST');
    const reply = await rawTlsExchange(
      server.sidecar.sidecar.inboundPort,
      server.client,
      server.ca.bundlePem,
      'OPTIONS * HTTP/1.1\r\nHost: b.demo\r\nConnection: close\r\n\r\n',
    );
    expect(reply.split('\r\n', 1)[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4))).toMatchObject({ code: 'MESHAUTH_ERR_BAD_REQUEST' });
    expect(server.app.seen.length).toBe(seen);
    expect(await rejected('MESHAUTH_ERR_BAD_REQUEST')).toBe(before + 1);
    expect(await rejected('MESHAUTH_ERR_UPSTREAM_UNAVAILABLE')).toBe(0);
  });

  it('fail/OPTIONS with :path * over h2 → 400 MESHAUTH_ERR_BAD_REQUEST, the app untouched', async () => {
    const seen = server.app.seen.length;
    const before = await rejected('MESHAUTH_ERR_BAD_REQUEST');
    const session = await mtlsH2Session(server.sidecar.sidecar.inboundPort, server.client, server.ca.bundlePem);
    try {
      const { status, body } = await h2Answer(session, { ':method': 'OPTIONS', ':path': '*', ':authority': 'b.demo' });
      expect(status).toBe(400);
      expect(JSON.parse(body)).toMatchObject({ code: 'MESHAUTH_ERR_BAD_REQUEST' });
    } finally {
      session.close();
    }
    expect(server.app.seen.length).toBe(seen);
    expect(await rejected('MESHAUTH_ERR_BAD_REQUEST')).toBe(before + 1);
    expect(await rejected('MESHAUTH_ERR_UPSTREAM_UNAVAILABLE')).toBe(0);
  });

  async function h2(path: string): Promise<{ status: number; body: string }> {
    const session = await mtlsH2Session(server.sidecar.sidecar.inboundPort, server.client, server.ca.bundlePem);
    try {
      return await h2Answer(session, { ':method': 'GET', ':path': path, ':authority': 'b.demo' });
    } finally {
      session.close();
    }
  }

  it.each([
    ['a latin1 letter', '/caf\u00e9'],
    ['a byte 0xFF', '/a\u00ff'],
  ])('fail/%s → 400 MESHAUTH_ERR_BAD_REQUEST (bad_char), the app untouched, as over HTTP/1.1', async (_name, path) => {
    const seen = server.app.seen.length;
    const before = await rejected('MESHAUTH_ERR_BAD_REQUEST');
    const { status, body } = await h2(path);
    expect(status).toBe(400);
    expect(JSON.parse(body)).toMatchObject({ code: 'MESHAUTH_ERR_BAD_REQUEST' });
    expect(server.app.seen.length).toBe(seen);
    expect(await rejected('MESHAUTH_ERR_BAD_REQUEST')).toBe(before + 1);
    // The same bytes over HTTP/1.1: node:http's parser refuses them before any check of ours.
    const reply = await rawTlsExchange(
      server.sidecar.sidecar.inboundPort,
      server.client,
      server.ca.bundlePem,
      `GET ${path} HTTP/1.1\r\nHost: b.demo\r\nConnection: close\r\n\r\n`,
    );
    expect(reply.split('\r\n', 1)[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(server.app.seen.length).toBe(seen);
  });

  it.each([['/a#frag'], ['/a%00b'], ['/a"b']])('ok/%s reaches the app as it does over HTTP/1.1', async (path) => {
    const seen = server.app.seen.length;
    const { status } = await h2(path);
    expect(status).toBe(200);
    expect(server.app.seen.length).toBe(seen + 1);
  });
});
