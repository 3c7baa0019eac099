// Every refusal of the gateway is an answer with a code, a metric and one log line, found by an outside test: paths in
// the gateway's own namespace (404), ambiguous paths (400), a request no route matches (counted, but no log line), a
// logout by another method or started by another site (403) and a sign-in that could not start because the provider was
// down (502, logged but not counted) used to answer without a metric or a log line. Refusals before a route is known
// count in meshauth_gateway_decisions_total{route=""}.
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reservedRule } from '../../src/authz/index.js';
import type { Metrics } from '../../src/telemetry/index.js';
import { type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';

async function deniesWithoutRoute(metrics: Metrics, rule: string): Promise<number> {
  const values = (await metrics.gatewayDecisions.get()).values;
  return (
    values.find((v) => v.labels.route === '' && v.labels.decision === 'deny' && v.labels.rule === rule)?.value ?? 0
  );
}

async function logins(metrics: Metrics, result: string): Promise<number> {
  return (await metrics.gatewayLogins.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
}

const NAVIGATION = { accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };

describe('gateway: every refusal is counted and logged once', () => {
  let mesh: GatewayMesh;
  let agent: Agent;
  beforeAll(async () => {
    mesh = await startGatewayMesh();
    // Host headers other than the certificate's names are sent too (a request no route matches).
    agent = new Agent({ connect: { ca: mesh.ca.rootPem, checkServerIdentity: () => undefined } });
  });
  afterAll(async () => {
    await agent?.close();
    await mesh?.close();
  });

  const cases: ReadonlyArray<
    readonly [
      name: string,
      method: string,
      path: string,
      headers: Record<string, string>,
      status: number,
      code: string,
      rule: string,
    ]
  > = [
    [
      'fail/a path in the gateway namespace',
      'GET',
      '/.meshauth/other',
      {},
      404,
      'MESHAUTH_ERR_EDGE_NO_ROUTE',
      'reserved_path',
    ],
    [
      'fail/a path that normalizes into the gateway namespace',
      'GET',
      '/%2Emeshauth/other',
      {},
      404,
      'MESHAUTH_ERR_EDGE_NO_ROUTE',
      'reserved_path',
    ],
    [
      'fail/an ambiguous path (encoded slash)',
      'GET',
      '/shop%2F..%2Fadmin',
      {},
      400,
      'MESHAUTH_ERR_PATH_AMBIGUOUS',
      'encoded_slash',
    ],
    [
      'fail/a host no route matches',
      'GET',
      '/shop',
      { host: 'other.example' },
      404,
      'MESHAUTH_ERR_EDGE_NO_ROUTE',
      'no-route',
    ],
    [
      'fail/a logout another site started',
      'GET',
      '/.meshauth/logout',
      { 'sec-fetch-site': 'cross-site' },
      403,
      'MESHAUTH_ERR_CROSS_SITE_REQUEST',
      'logout-cross_site',
    ],
    ['fail/a logout by PUT', 'PUT', '/.meshauth/logout', {}, 400, 'MESHAUTH_ERR_METHOD_INVALID', 'logout-method'],
  ];

  it.each(cases)(
    '%s → status, code, one metric increment and one log line',
    async (_name, method, path, headers, status, code, rule) => {
      const before = await deniesWithoutRoute(mesh.metrics, rule);
      const seen = mesh.log.lines.length;
      const answer = await request(`${mesh.origin}${path}`, {
        method: method as 'GET',
        headers: { ...NAVIGATION, ...headers },
        dispatcher: agent,
      });
      expect(answer.statusCode).toBe(status);
      expect(((await answer.body.json()) as { code: string }).code).toBe(code);
      expect(await deniesWithoutRoute(mesh.metrics, rule)).toBe(before + 1);
      const denies = mesh.log.lines.slice(seen).filter((line) => line.event === 'gateway_deny');
      expect(denies).toHaveLength(1);
      expect(denies[0]).toMatchObject({ route: '', rule, code, method });
      // The label a policy rule's name fills: no policy may name a rule so.
      expect(reservedRule(rule)).toBeDefined();
    },
  );

  it('ok/after the refusals the gateway still sends a navigation to the provider', async () => {
    const answer = await request(`${mesh.origin}/shop`, { headers: NAVIGATION, dispatcher: agent });
    await answer.body.dump();
    expect(answer.statusCode).toBe(302);
  });
});

describe('gateway: a sign-in that cannot start', () => {
  it('fail/provider down at the first navigation → 502 MESHAUTH_ERR_IDP_UNAVAILABLE, counted and logged once', async () => {
    const mesh = await startGatewayMesh();
    const agent = new Agent({ connect: { ca: mesh.ca.rootPem } });
    try {
      await mesh.provider.close(); // discovery is lazy: the first sign-in finds the provider gone
      const before = await logins(mesh.metrics, 'idp_unavailable');
      const seen = mesh.log.lines.length;
      const answer = await request(`${mesh.origin}/shop`, { headers: NAVIGATION, dispatcher: agent });
      expect(answer.statusCode).toBe(502);
      expect(((await answer.body.json()) as { code: string }).code).toBe('MESHAUTH_ERR_IDP_UNAVAILABLE');
      expect(await logins(mesh.metrics, 'idp_unavailable')).toBe(before + 1);
      const lines = mesh.log.lines.slice(seen).filter((line) => line.event === 'login_start_failed');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ code: 'MESHAUTH_ERR_IDP_UNAVAILABLE', reason: 'idp_unavailable' });
    } finally {
      await agent.close();
      await mesh.close();
    }
  });
});

describe('gateway: sign-in endpoints without browser sign-in', () => {
  it('fail/the callback of a gateway without oidc → 404, counted and logged once', async () => {
    const mesh = await startGatewayMesh({
      gateway: (base) => {
        const { oidc: _oidc, ...rest } = base;
        return rest;
      },
    });
    const agent = new Agent({ connect: { ca: mesh.ca.rootPem } });
    try {
      const before = await deniesWithoutRoute(mesh.metrics, 'no_sign_in');
      const seen = mesh.log.lines.length;
      const answer = await request(`${mesh.origin}/.meshauth/callback?state=x&code=y`, { dispatcher: agent });
      expect(answer.statusCode).toBe(404);
      expect(((await answer.body.json()) as { code: string }).code).toBe('MESHAUTH_ERR_EDGE_NO_ROUTE');
      expect(await deniesWithoutRoute(mesh.metrics, 'no_sign_in')).toBe(before + 1);
      expect(reservedRule('no_sign_in')).toBeDefined();
      expect(mesh.log.lines.slice(seen).filter((line) => line.event === 'gateway_deny')).toHaveLength(1);
    } finally {
      await agent.close();
      await mesh.close();
    }
  });
});
