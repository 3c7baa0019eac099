// `OPTIONS *` (asterisk form) at an inbound without a policy file: the app cannot be sent it (undici takes only a
// path), so it is refused at the head check, 400 target_form, counted, the app untouched. It was admitted and then
// failed at the app forward as 503 MESHAUTH_ERR_UPSTREAM_UNAVAILABLE, logged as the app being unavailable.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { h2Answer, mtlsH2Session } from '../helpers/raw-app.js';
import { rawTlsExchange } from '../helpers/raw-tls.js';
import { type InboundServer, startInboundServer } from '../helpers/sidecar-harness.js';

describe('inbound without a policy: OPTIONS *', () => {
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
});
