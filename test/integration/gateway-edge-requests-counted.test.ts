// The edge's own request metrics, through a real gateway in front of a real mesh: every answer at the public
// listener (the services' 200s, the gateway's sign-in redirects, 401s, 404s of no route, and a head node:http could
// not parse) is one count in meshauth_gateway_requests_total{route,code} and, but for the last, one observation in
// meshauth_gateway_request_duration_seconds{route}, over HTTP/1.1 and HTTP/2. Before, the gateway had no request
// counter or latency histogram of its own: the mesh hop's meshauth_requests_total{direction="outbound"} saw only the
// requests that reached a service, timed from the forward, not from the edge.
import { connect as h2Connect } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Metrics } from '../../src/telemetry/index.js';
import { type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';
import { available, runCommand } from '../helpers/sidecar-harness.js';

const NAVIGATION = { accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };

async function answered(metrics: Metrics, route: string, code: string): Promise<number> {
  const values = (await metrics.gatewayRequests.get()).values;
  return values.find((v) => v.labels.route === route && v.labels.code === code)?.value ?? 0;
}

async function timed(metrics: Metrics, route: string): Promise<number> {
  const values = (await metrics.gatewayRequestDuration.get()).values;
  return (
    values.find(
      (v) =>
        (v as { metricName?: string }).metricName === 'meshauth_gateway_request_duration_seconds_count' &&
        v.labels.route === route,
    )?.value ?? 0
  );
}

/** Raw HTTP/1.1 bytes over TLS to the gateway; the reply read until the gateway closes. */
function rawExchange(origin: string, caPem: string, bytes: string): Promise<string> {
  const url = new URL(origin);
  return new Promise<string>((resolve, reject) => {
    let text = '';
    const socket = tlsConnect({
      host: url.hostname,
      port: Number(url.port),
      ca: caPem,
      ALPNProtocols: ['http/1.1'],
      checkServerIdentity: () => undefined,
    });
    socket.once('secureConnect', () => socket.write(bytes));
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
    });
    socket.once('close', () => resolve(text));
    socket.once('error', (e) => (text === '' ? reject(e) : resolve(text)));
    socket.setTimeout(5_000, () => socket.destroy());
  });
}

describe('gateway: requests counted and timed at the edge', () => {
  let mesh: GatewayMesh;
  let agent: Agent;
  beforeAll(async () => {
    mesh = await startGatewayMesh({
      gateway: (base) => ({
        ...base,
        routes: [
          {
            name: 'public',
            match: { host: '127.0.0.1', pathPrefix: '/public' },
            to: (base.routes as { to: unknown }[])[0]?.to,
            login: 'none',
          },
          ...(base.routes as unknown[]),
        ],
      }),
    });
    agent = new Agent({ connect: { ca: mesh.ca.rootPem, checkServerIdentity: () => undefined } });
  });
  afterAll(async () => {
    await agent?.close();
    await mesh?.close();
  });

  const cases: ReadonlyArray<
    readonly [name: string, path: string, headers: Record<string, string>, route: string, status: number]
  > = [
    ['ok/a service answer on a public route', '/public/page', {}, 'public', 200],
    ['ok/a navigation sent to sign in', '/shop', NAVIGATION, 'web', 302],
    ['fail/an API call without a token', '/shop', { accept: 'application/json' }, 'web', 401],
    ['fail/a host no route matches', '/shop', { host: 'other.example' }, '', 404],
  ];

  it.each(cases)(
    '%s over HTTP/1.1: one count by route and code, one timing',
    async (_n, path, headers, route, status) => {
      const before = [await answered(mesh.metrics, route, String(status)), await timed(mesh.metrics, route)];
      const answer = await request(`${mesh.origin}${path}`, { headers, dispatcher: agent });
      await answer.body.dump();
      expect(answer.statusCode).toBe(status);
      expect([await answered(mesh.metrics, route, String(status)), await timed(mesh.metrics, route)]).toEqual([
        (before[0] ?? 0) + 1,
        (before[1] ?? 0) + 1,
      ]);
    },
  );

  it.each(cases)(
    '%s over HTTP/2: one count by route and code, one timing',
    async (_n, path, headers, route, status) => {
      const before = [await answered(mesh.metrics, route, String(status)), await timed(mesh.metrics, route)];
      const session = h2Connect(mesh.origin, { ca: mesh.ca.rootPem, checkServerIdentity: () => undefined });
      try {
        const { host, ...rest } = headers;
        const stream = session.request({
          ':path': path,
          ...(host === undefined ? {} : { ':authority': host }),
          ...rest,
        });
        const got = await new Promise<number>((resolve, reject) => {
          stream.once('response', (head) => resolve(Number(head[':status'])));
          stream.once('error', reject);
        });
        stream.resume();
        await new Promise((resolve) => stream.once('close', resolve));
        expect(got).toBe(status);
      } finally {
        session.close();
      }
      expect([await answered(mesh.metrics, route, String(status)), await timed(mesh.metrics, route)]).toEqual([
        (before[0] ?? 0) + 1,
        (before[1] ?? 0) + 1,
      ]);
    },
  );

  it('fail/a head node:http cannot parse: 400 counted without a route (not timed: no request was read)', async () => {
    const before = [await answered(mesh.metrics, '', '400'), await timed(mesh.metrics, '')];
    const reply = await rawExchange(mesh.origin, mesh.ca.rootPem, 'GET / HTTP/1.1\r\nbad header line\r\n\r\n');
    expect(reply.startsWith('HTTP/1.1 400')).toBe(true);
    expect([await answered(mesh.metrics, '', '400'), await timed(mesh.metrics, '')]).toEqual([
      (before[0] ?? 0) + 1,
      before[1],
    ]);
  });

  it('fail/an Expect the gateway does not meet: 417 counted and timed without a route', async () => {
    const before = [await answered(mesh.metrics, '', '417'), await timed(mesh.metrics, '')];
    const reply = await rawExchange(
      mesh.origin,
      mesh.ca.rootPem,
      'GET /public/page HTTP/1.1\r\nhost: 127.0.0.1\r\nexpect: x-odd\r\nconnection: close\r\n\r\n',
    );
    expect(reply.startsWith('HTTP/1.1 417')).toBe(true);
    expect([await answered(mesh.metrics, '', '417'), await timed(mesh.metrics, '')]).toEqual([
      (before[0] ?? 0) + 1,
      (before[1] ?? 0) + 1,
    ]);
  });

  it.skipIf(!available('promtool'))('ok/promtool check metrics accepts the gateway exposition', async () => {
    const text = await mesh.metrics.exposition();
    expect(text).toContain('meshauth_gateway_request_duration_seconds_bucket');
    expect(text).toContain('meshauth_gateway_requests_total{');
    const result = await runCommand('promtool', ['check', 'metrics'], { input: text });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.code).toBe(0);
  });
});
