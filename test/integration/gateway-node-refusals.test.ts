// Requests Node refuses before the gateway's edge sees them get the gateway's answer, a count and one log line, found
// by an outside test: a malformed HTTP/1.1 head (bare LF, Content-Length with Transfer-Encoding, `Content-Length:
// 5, 6`, a head past maxHeaderBytes) got node:http's bare 400 or 431 (no code, no body), an HTTP/1.1 CONNECT had its
// connection closed without a byte and an HTTP/2 CONNECT got node:http2's bare 405; none was counted or logged. Now
// each is the JSON error (as at the sidecar's inbound), meshauth_gateway_decisions_total{route="",decision="deny"}
// and one `gateway_deny` line. The rule is bounded (http_malformed, headers_too_large, request_timeout): the parser's
// code goes only to the log line. Found by review: a parse error in the rest of the body of a request the edge had
// already refused at its head was counted and answered again once that answer had flushed (the client read the second
// 400 as the answer to its next request), and an `Expect` other than 100-continue still got Node's bare 417.
import { connect as h2connect } from 'node:http2';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Metrics } from '../../src/telemetry/index.js';
import { type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';
import { h2Answer } from '../helpers/raw-app.js';
import { rawTlsExchange, rawTlsSocket } from '../helpers/raw-tls.js';
import type { TestSvid } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

async function deniesWithoutRoute(metrics: Metrics): Promise<number> {
  const values = (await metrics.gatewayDecisions.get()).values;
  return values
    .filter((v) => v.labels.route === '' && v.labels.decision === 'deny')
    .reduce((sum, v) => sum + v.value, 0);
}

describe('gateway: requests Node refuses are answered, counted and logged', () => {
  let mesh: GatewayMesh;
  let client: TestSvid; // the public listener asks for no client certificate; rawTlsExchange sends one anyway
  beforeAll(async () => {
    mesh = await startGatewayMesh();
    client = await mesh.ca.issue({ id: mesh.ca.idFor('/ns/outside/sa/client') });
  });
  afterAll(async () => {
    await mesh?.close();
  });

  const host = () => `Host: 127.0.0.1:${mesh.gateway.port}\r\n`;
  const cases: ReadonlyArray<readonly [name: string, bytes: () => string, status: number, code: string, rule: string]> =
    [
      [
        'fail/bare LF line endings',
        () => `GET /shop HTTP/1.1\n${host().replace('\r', '')}\n`,
        400,
        'MESHAUTH_ERR_BAD_REQUEST',
        'http_malformed',
      ],
      [
        'fail/Content-Length with Transfer-Encoding',
        () => `POST /shop HTTP/1.1\r\n${host()}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
        400,
        'MESHAUTH_ERR_BAD_REQUEST',
        'http_malformed',
      ],
      [
        'fail/Content-Length: 5, 6',
        () => `POST /shop HTTP/1.1\r\n${host()}Content-Length: 5, 6\r\n\r\nhello`,
        400,
        'MESHAUTH_ERR_BAD_REQUEST',
        'http_malformed',
      ],
      [
        'fail/a head past maxHeaderBytes',
        () => `GET /shop HTTP/1.1\r\n${host()}X-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
        431,
        'MESHAUTH_ERR_HEADERS_TOO_LARGE',
        'headers_too_large',
      ],
      [
        'fail/HTTP/1.1 CONNECT',
        () => `CONNECT 127.0.0.1:22 HTTP/1.1\r\n${host()}\r\n`,
        400,
        'MESHAUTH_ERR_METHOD_INVALID',
        'method',
      ],
      [
        'fail/an Expect other than 100-continue',
        () => `POST /shop HTTP/1.1\r\n${host()}Expect: something-else\r\nContent-Length: 0\r\n\r\n`,
        417,
        'MESHAUTH_ERR_EXPECTATION_FAILED',
        'expectation',
      ],
    ];

  it.each(cases)('%s → the JSON error, one count, one log line', async (_name, bytes, status, code, rule) => {
    const before = await deniesWithoutRoute(mesh.metrics);
    const seen = mesh.log.lines.length;
    const reply = await rawTlsExchange(mesh.gateway.port, client, mesh.ca.rootPem, bytes());
    expect(reply.startsWith(`HTTP/1.1 ${status} `)).toBe(true);
    expect(JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)).code).toBe(code);
    expect(await deniesWithoutRoute(mesh.metrics)).toBe(before + 1);
    const denies = mesh.log.lines.slice(seen).filter((line) => line.event === 'gateway_deny');
    expect(denies).toHaveLength(1);
    expect(denies[0]).toMatchObject({ route: '', code, rule });
    // The parser's own code is in the log line only, never a label.
    if (rule === 'http_malformed' || rule === 'headers_too_large') expect(denies[0]?.parserCode).toMatch(/^HPE_/);
  });

  it.each([
    ['fail/Host: a b (400 at the head)', '/shop', 'Host: a b\r\n', 400],
    ['fail/a path in the gateway namespace (404)', '/.meshauth/other', '', 404],
  ] as const)(
    '%s, then a broken chunk of its body → no second answer, no second count',
    async (_name, path, hostLine, status) => {
      const before = await deniesWithoutRoute(mesh.metrics);
      const seen = mesh.log.lines.length;
      const socket = rawTlsSocket(mesh.gateway.port, client, mesh.ca.rootPem);
      let reply = '';
      let closed = false;
      socket.on('data', (d: Buffer) => {
        reply += d.toString('latin1');
      });
      socket.on('error', () => undefined);
      socket.on('close', () => {
        closed = true;
      });
      socket.setTimeout(5_000, () => socket.destroy());
      try {
        await new Promise((resolve) => socket.once('secureConnect', resolve));
        socket.write(
          `POST ${path} HTTP/1.1\r\n${hostLine || host()}Transfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n`,
        );
        // The whole answer arrived: the edge's response has finished (and node:http has let go of it).
        await waitFor('the edge answer', () => /\r\n\r\n\{.*\}\n?$/s.test(reply), 5_000);
        socket.write('zz\r\n');
        await waitFor('the connection to close', () => closed, 5_000);
      } finally {
        socket.destroy();
      }
      expect(reply.startsWith(`HTTP/1.1 ${status} `)).toBe(true);
      expect(reply.match(/HTTP\/1\.1 \d{3} /g)).toHaveLength(1);
      expect(await deniesWithoutRoute(mesh.metrics)).toBe(before + 1);
      expect(mesh.log.lines.slice(seen).filter((line) => line.event === 'gateway_deny')).toHaveLength(1);
    },
  );

  it('ok/a refused head whose body then ends: a malformed next request on that connection is answered and counted', async () => {
    const before = await deniesWithoutRoute(mesh.metrics);
    const socket = rawTlsSocket(mesh.gateway.port, client, mesh.ca.rootPem);
    let reply = '';
    socket.on('data', (d: Buffer) => {
      reply += d.toString('latin1');
    });
    socket.on('error', () => undefined);
    socket.setTimeout(5_000, () => socket.destroy());
    try {
      await new Promise((resolve) => socket.once('secureConnect', resolve));
      socket.write(`POST /.meshauth/other HTTP/1.1\r\n${host()}Transfer-Encoding: chunked\r\n\r\n`);
      await waitFor('the edge answer', () => /\r\n\r\n\{.*\}\n?$/s.test(reply), 5_000);
      socket.write(`0\r\n\r\nGET /shop HTTP/1.1\n${host().replace('\r', '')}\n`);
      await waitFor('a second answer', () => (reply.match(/HTTP\/1\.1 \d{3} /g) ?? []).length === 2, 5_000);
    } finally {
      socket.destroy();
    }
    expect(reply.match(/HTTP\/1\.1 \d{3} /g)).toEqual(['HTTP/1.1 404 ', 'HTTP/1.1 400 ']);
    expect(await deniesWithoutRoute(mesh.metrics)).toBe(before + 2);
  });

  it('fail/HTTP/2 Expect other than 100-continue → 417 MESHAUTH_ERR_EXPECTATION_FAILED, one count, one log line', async () => {
    const before = await deniesWithoutRoute(mesh.metrics);
    const seen = mesh.log.lines.length;
    const session = h2connect(mesh.origin, { ca: mesh.ca.rootPem });
    try {
      const answer = await h2Answer(session, { ':method': 'POST', ':path': '/shop', expect: 'something-else' });
      expect(answer.status).toBe(417);
      expect(JSON.parse(answer.body).code).toBe('MESHAUTH_ERR_EXPECTATION_FAILED');
    } finally {
      session.destroy();
    }
    expect(await deniesWithoutRoute(mesh.metrics)).toBe(before + 1);
    const denies = mesh.log.lines.slice(seen).filter((line) => line.event === 'gateway_deny');
    expect(denies).toHaveLength(1);
    expect(denies[0]).toMatchObject({ route: '', code: 'MESHAUTH_ERR_EXPECTATION_FAILED', rule: 'expectation' });
  });

  it('fail/HTTP/2 CONNECT → 400 MESHAUTH_ERR_METHOD_INVALID, one count, one log line', async () => {
    const before = await deniesWithoutRoute(mesh.metrics);
    const seen = mesh.log.lines.length;
    const session = h2connect(mesh.origin, { ca: mesh.ca.rootPem });
    try {
      const answer = await h2Answer(session, { ':method': 'CONNECT', ':authority': '127.0.0.1:22' });
      expect(answer.status).toBe(400);
      expect(JSON.parse(answer.body).code).toBe('MESHAUTH_ERR_METHOD_INVALID');
    } finally {
      session.destroy();
    }
    expect(await deniesWithoutRoute(mesh.metrics)).toBe(before + 1);
    const denies = mesh.log.lines.slice(seen).filter((line) => line.event === 'gateway_deny');
    expect(denies).toHaveLength(1);
    expect(denies[0]).toMatchObject({ route: '', code: 'MESHAUTH_ERR_METHOD_INVALID', method: 'CONNECT' });
  });

  it('ok/the gateway still serves afterwards', async () => {
    const agent = new Agent({ connect: { ca: mesh.ca.rootPem } });
    try {
      const answer = await request(`${mesh.origin}/shop`, {
        dispatcher: agent,
        headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' },
      });
      await answer.body.dump();
      expect(answer.statusCode).toBe(302);
    } finally {
      await agent.close();
    }
  });
});
