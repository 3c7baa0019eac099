// Issue 5's chain: an edge client with an oidc-provider token → gateway (validates the token, vouches) → orders →
// payments. Each app forwards the x-meshauth-passport it received; payments' app must see the end user and the
// chain [gateway, orders]; every replay/forgery attempt fails with its code. Real sockets, real TLS, real IdP.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseUserHeader } from '../../src/authn/index.js';
import { actChain } from '../../src/authn/passport/index.js';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { type OidcIssuer, startOidcIssuer } from '../helpers/oidc-issuer.js';
import { startApp, startTestSidecar, type TestApp, type TestSidecar } from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';

const TD = 'example.org';
const GATEWAY = `spiffe://${TD}/ns/edge/sa/gateway`;
const ORDERS = `spiffe://${TD}/ns/shop/sa/orders`;
const PAYMENTS = `spiffe://${TD}/ns/shop/sa/payments`;
const INGRESS = `spiffe://${TD}/ns/edge/sa/ingress`;
const OTHER = `spiffe://${TD}/ns/shop/sa/other`;

let ca: TestCa;
let idp: OidcIssuer;
let dir: string;
const closers: Array<() => Promise<void>> = [];
let gateway: TestSidecar;
let orders: TestSidecar;
let payments: TestSidecar;
let appPayments: TestApp;
let appOrders: TestApp;
let appGateway: TestApp;
let ingress: TestSvid;
let other: TestSvid;

/** An app that calls `host` through its sidecar's outbound, forwarding the passport it received. */
function forwardingApp(host: string, outboundPort: () => number) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const passport = req.headers['x-meshauth-passport'];
    const injected = req.headers['x-test-inject-passport'];
    request(`http://127.0.0.1:${outboundPort()}${req.url}`, {
      headers: {
        host,
        ...(typeof injected === 'string'
          ? { 'x-meshauth-passport': injected }
          : typeof passport === 'string'
            ? { 'x-meshauth-passport': passport }
            : {}),
      },
    }).then(
      async (downstream) => {
        const body = await downstream.body.text();
        res.writeHead(downstream.statusCode, { 'content-type': 'application/json' }).end(body);
      },
      (error: Error) => res.writeHead(500).end(error.message),
    );
  };
}

function sidecarConfig(appPort: number, extra: { policy?: string; routes?: Record<string, unknown> }) {
  return sidecarConfigFromObject(
    {
      trustDomain: TD,
      ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent', token: '/nonexistent' },
      inbound: {
        listen: '127.0.0.1:0',
        app: `127.0.0.1:${appPort}`,
        ...(extra.policy === undefined ? {} : { policy: extra.policy }),
        endUser: {
          issuers: [{ issuer: idp.issuer, audiences: [idp.audience], algorithms: ['ES256'] }],
          vouchers: [GATEWAY],
          claims: ['scope'],
        },
      },
      outbound: { listen: '127.0.0.1:0', routes: extra.routes ?? {} },
      admin: { listen: '127.0.0.1:0' },
    },
    'identity-chain-test',
  );
}

function mtlsClient(svid: TestSvid): Agent {
  const agent = new Agent({
    connect: { cert: svid.chainPem, key: svid.keyPem, ca: ca.rootPem, checkServerIdentity: () => undefined },
  });
  closers.push(() => agent.close());
  return agent;
}

beforeAll(async () => {
  ca = await TestCa.create(TD);
  idp = await startOidcIssuer({ audience: 'shop', scopes: ['orders:read', 'payments:read'] });
  closers.push(() => idp.close());
  dir = mkdtempSync(join(tmpdir(), 'meshauth-chain-'));
  closers.push(async () => rmSync(dir, { recursive: true, force: true }));
  const paymentsPolicy = join(dir, 'payments-policy.yaml');
  writeFileSync(
    paymentsPolicy,
    [
      'apiVersion: meshauth.dev/v1',
      'kind: Policy',
      'exposeRuleNames: true',
      'rules:',
      '  - name: orders-pay-for-gateway-users',
      '    action: allow',
      `    from: { ids: ["${ORDERS}"] }`,
      '    to: { paths: ["/pay/*"] }',
      `    when: { user: { scope: ["payments:read"] }, chain: { includes: ["${GATEWAY}"] } }`,
    ].join('\n'),
  );

  appPayments = await startApp();
  closers.push(() => appPayments.close());
  payments = await startTestSidecar(ca, PAYMENTS, sidecarConfig(appPayments.port, { policy: paymentsPolicy }));
  closers.push(() => payments.sidecar.close(0));

  appOrders = await startApp(forwardingApp('payments.shop', () => orders.sidecar.outboundPort));
  closers.push(() => appOrders.close());
  orders = await startTestSidecar(
    ca,
    ORDERS,
    sidecarConfig(appOrders.port, {
      routes: { 'payments.shop': { address: `127.0.0.1:${payments.sidecar.inboundPort}`, ids: [PAYMENTS] } },
    }),
  );
  closers.push(() => orders.sidecar.close(0));

  appGateway = await startApp(forwardingApp('orders.shop', () => gateway.sidecar.outboundPort));
  closers.push(() => appGateway.close());
  gateway = await startTestSidecar(
    ca,
    GATEWAY,
    sidecarConfig(appGateway.port, {
      routes: {
        'orders.shop': { address: `127.0.0.1:${orders.sidecar.inboundPort}`, ids: [ORDERS] },
        'payments.shop': { address: `127.0.0.1:${payments.sidecar.inboundPort}`, ids: [PAYMENTS] },
      },
    }),
  );
  closers.push(() => gateway.sidecar.close(0));
  ingress = await ca.issue({ id: INGRESS });
  other = await ca.issue({ id: OTHER });
});

afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
});

async function callGateway(
  token: string | undefined,
  path = '/pay/42',
  extra: Record<string, string> = {},
  dispatcher: Agent = mtlsClient(ingress),
) {
  const response = await request(`https://127.0.0.1:${gateway.sidecar.inboundPort}${path}`, {
    dispatcher,
    headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...extra },
  });
  return { status: response.statusCode, headers: response.headers, body: await response.body.text() };
}

function linkChain(passport: string): string[] {
  const [link] = passport.split(',');
  const claims = JSON.parse(Buffer.from((link as string).split('.')[1] as string, 'base64url').toString());
  return actChain(claims.act);
}

describe('end-user identity through gateway → orders → payments', () => {
  it('ok/payments sees the end user, the caller and the chain [gateway, orders]; no raw token past the gateway', async () => {
    const token = await idp.getToken({ clientId: 'orders-client', scope: 'orders:read payments:read' });
    const before = appPayments.seen.length;
    const result = await callGateway(token);
    expect(result.status, result.body).toBe(200);
    const seen = appPayments.seen[before];
    expect(seen).toBeDefined();
    const headers = seen?.headers ?? {};
    expect(headers.authorization).toBeUndefined();
    expect(headers['x-forwarded-client-cert']).toContain(`URI=${ORDERS}`);
    expect(parseUserHeader(headers['x-meshauth-user'] as string)).toMatchObject({
      sub: 'orders-client',
      iss: idp.issuer,
      scope: 'orders:read payments:read',
    });
    expect(linkChain(headers['x-meshauth-passport'] as string)).toEqual([GATEWAY, ORDERS]);
    // The gateway's app got the origin passport and the user, but not the token either.
    const atGateway = appGateway.seen.at(-1)?.headers ?? {};
    expect(atGateway.authorization).toBeUndefined();
    expect(parseUserHeader(atGateway['x-meshauth-user'] as string)?.sub).toBe('orders-client');
    expect(await payments.metrics.registry.getSingleMetricAsString('meshauth_passport_verifications_total')).toContain(
      'result="ok"',
    );
  });

  it('fail/policy: a user without payments:read is denied at payments with the rule-less default deny', async () => {
    const token = await idp.getToken({ clientId: 'orders-client', scope: 'orders:read' });
    const result = await callGateway(token);
    expect(result.status).toBe(403);
    expect(JSON.parse(result.body)).toMatchObject({ code: 'MESHAUTH_ERR_FORBIDDEN', rule: 'default-deny' });
  });

  it('fail/token: a token for another audience is refused at the gateway with WWW-Authenticate', async () => {
    const token = await idp.getToken({ clientId: 'orders-client', scope: 'orders:read', resource: 'urn:other' });
    const result = await callGateway(token);
    expect(result.status).toBe(401);
    expect(result.headers['www-authenticate']).toContain('invalid_token');
    expect(JSON.parse(result.body).code).toBe('MESHAUTH_ERR_TOKEN_INVALID');
  });

  it('fail/replay: a passport captured at payments and sent from another identity is rejected', async () => {
    const token = await idp.getToken({ clientId: 'orders-client', scope: 'orders:read payments:read' });
    await callGateway(token);
    const captured = appPayments.seen.at(-1)?.headers['x-meshauth-passport'] as string;
    const response = await request(`https://127.0.0.1:${payments.sidecar.inboundPort}/pay/1`, {
      dispatcher: mtlsClient(other),
      headers: { 'x-meshauth-passport': captured },
    });
    expect(response.statusCode).toBe(401);
    expect((await response.body.json()) as object).toMatchObject({ code: 'MESHAUTH_ERR_PASSPORT_INVALID' });
  });

  it('fail/audience: a passport addressed to orders, replayed by its signer (the gateway) to payments', async () => {
    const token = await idp.getToken({ clientId: 'orders-client', scope: 'orders:read payments:read' });
    await callGateway(token);
    const toOrders = appOrders.seen.at(-1)?.headers['x-meshauth-passport'] as string;
    const response = await request(`https://127.0.0.1:${payments.sidecar.inboundPort}/pay/1`, {
      dispatcher: mtlsClient(gateway.svid),
      headers: { 'x-meshauth-passport': toOrders },
    });
    expect(response.statusCode).toBe(401);
    expect((await response.body.json()) as object).toMatchObject({ code: 'MESHAUTH_ERR_PASSPORT_INVALID' });
  });

  // X02: a link is bound to the leaf it was signed with (strict binding), not to the SPIFFE ID alone; a sidecar
  // mints a new link per request, so after a rotation its links carry the new leaf.
  it('fail/X02: a link captured at payments, replayed by the same identity with a rotated key, is rejected', async () => {
    const token = await idp.getToken({ clientId: 'orders-client', scope: 'orders:read payments:read' });
    await callGateway(token);
    const captured = appPayments.seen.at(-1)?.headers['x-meshauth-passport'] as string;
    const rotatedOrders = await ca.issue({ id: ORDERS });
    const response = await request(`https://127.0.0.1:${payments.sidecar.inboundPort}/pay/1`, {
      dispatcher: mtlsClient(rotatedOrders),
      headers: { 'x-meshauth-passport': captured },
    });
    expect(response.statusCode).toBe(401);
    expect((await response.body.json()) as object).toMatchObject({ code: 'MESHAUTH_ERR_PASSPORT_INVALID' });
  });

  it('ok/X02: rotations of the gateway and orders under 16 concurrent callers → every call 200', async () => {
    const token = await idp.getToken({ clientId: 'orders-client', scope: 'orders:read payments:read' });
    const statuses: number[] = [];
    let rotated = 0;
    // One client with keep-alive connections (a client per call would pass the inbound's per-peer connection cap).
    const client = mtlsClient(ingress);
    const caller = async (w: number) => {
      for (let i = 0; i < 25; i++) {
        const result = await callGateway(token, `/pay/${w}-${i}`, {}, client);
        statuses.push(result.status);
        // Rotations land while requests are in flight on every hop: each side's SVID twice, at different points.
        if (w === 0 && (i === 5 || i === 15)) {
          orders.holder.set({ svid: (await ca.issue({ id: ORDERS })).svid, bundle: ca.bundle });
          rotated++;
        }
        if (w === 1 && (i === 10 || i === 20)) {
          gateway.holder.set({ svid: (await ca.issue({ id: GATEWAY })).svid, bundle: ca.bundle });
          rotated++;
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, (_, w) => caller(w)));
    expect(rotated).toBe(4);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(statuses).toHaveLength(16 * 25);
  }, 60_000);

  it('fail/inject: an app cannot send a passport its sidecar never received', async () => {
    const token = await idp.getToken({ clientId: 'orders-client', scope: 'orders:read payments:read' });
    await callGateway(token);
    const captured = appPayments.seen.at(-1)?.headers['x-meshauth-passport'] as string;
    const result = await callGateway(token, '/pay/7', { 'x-test-inject-passport': captured });
    expect(result.status).toBe(401);
    expect(JSON.parse(result.body).code).toBe('MESHAUTH_ERR_PASSPORT_INVALID');
  });
});
