// A passport link names the leaf it was signed with, and the next hop checks it against the leaf of the connection it
// came on (strict binding). The outbound signs the link when a request arrives and picks its connection after: a
// rotation in between (16 callers through rotating sidecars hit it now and then, identity-chain's X02 case) sent a link
// bound to the old leaf over a connection made with the new SVID, and the peer refused it with 401. Here the rotation
// is made to land exactly there: the gateway sidecar's own passport wrapper runs, then its holder switches to a new
// SVID, then the request leaves. The exchange signs the link again for the connection's leaf: 200.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialHolder } from '../../src/agent/index.js';
import { startIdentityHooks } from '../../src/sidecar/identity-hooks.js';
import { type RunningSidecar, startSidecar } from '../../src/sidecar/index.js';
import type { OutboundRequestContext } from '../../src/sidecar/outbound/outbound-hooks.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { type OidcIssuer, startOidcIssuer } from '../helpers/oidc-issuer.js';
import {
  startApp,
  startTestSidecar,
  type TestApp,
  type TestConfigOptions,
  type TestSidecar,
  testConfig,
} from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';

const TD = 'example.org';
const GATEWAY = `spiffe://${TD}/ns/edge/sa/gateway`;
const PAYMENTS = `spiffe://${TD}/ns/shop/sa/payments`;
const INGRESS = `spiffe://${TD}/ns/edge/sa/ingress`;

let ca: TestCa;
let idp: OidcIssuer;
const closers: Array<() => Promise<void>> = [];
let payments: TestSidecar;
let appPayments: TestApp;
let ingress: TestSvid;

function config(appPort: number, routes: TestConfigOptions['routes'] = {}, http2 = true) {
  const endUser = {
    issuers: [{ issuer: idp.issuer, audiences: [idp.audience], algorithms: ['ES256'] }],
    vouchers: [GATEWAY],
    claims: ['scope'],
  };
  return testConfig({ trustDomain: TD, appPort, routes, http2, endUser });
}

interface Gateway {
  readonly sidecar: RunningSidecar;
  readonly holder: CredentialHolder;
  /** Switches the gateway to a new SVID right after its passport wrapper runs for the next request. */
  rotateAfterNextWrap(): Promise<void>;
  rotations: number;
}

/** A gateway sidecar (vouches for the end user, wraps passports) whose app calls payments through its outbound. */
async function startGateway(http2: boolean): Promise<Gateway> {
  let outboundPort = 0;
  const app = await startApp((req: IncomingMessage, res: ServerResponse) => {
    const passport = req.headers['x-meshauth-passport'];
    request(`http://127.0.0.1:${outboundPort}${req.url}`, {
      headers: { host: 'payments.shop', ...(typeof passport === 'string' ? { 'x-meshauth-passport': passport } : {}) },
    }).then(
      async (downstream) => {
        res.writeHead(downstream.statusCode, { 'content-type': 'application/json' }).end(await downstream.body.text());
      },
      (error: Error) => res.writeHead(500).end(error.message),
    );
  });
  closers.push(() => app.close());
  const gatewayConfig = config(
    app.port,
    { 'payments.shop': { address: `127.0.0.1:${payments.sidecar.inboundPort}`, ids: [PAYMENTS] } },
    http2,
  );
  const holder = new CredentialHolder({ svid: (await ca.issue({ id: GATEWAY })).svid, bundle: ca.bundle });
  const metrics = new Metrics();
  const logger = silentLogger();
  // The gateway's own identity hooks (its passport store and wrapper), with the rotation put right after the wrapper.
  const identity = await startIdentityHooks(gatewayConfig, holder, { logger, metrics, now: () => new Date() });
  closers.push(() => identity.close());
  const wrap = identity.hooks.onOutboundRequest;
  if (wrap === undefined) throw new Error('the gateway has no passport wrapper');
  let rotateNext: (() => Promise<void>) | undefined;
  const onOutboundRequest = async (context: OutboundRequestContext): Promise<void> => {
    const wrapped = wrap(context);
    const rotate = rotateNext;
    rotateNext = undefined;
    if (rotate !== undefined) await rotate();
    await wrapped;
  };
  const sidecar = await startSidecar(gatewayConfig, {
    logger,
    metrics,
    holder,
    hooks: { ...identity.hooks, onOutboundRequest },
  });
  closers.push(() => sidecar.close(0));
  outboundPort = sidecar.outboundPort;
  const gateway: Gateway = {
    sidecar,
    holder,
    rotations: 0,
    rotateAfterNextWrap: async () => {
      const rotated = await ca.issue({ id: GATEWAY });
      rotateNext = async () => {
        holder.set({ svid: rotated.svid, bundle: ca.bundle });
        gateway.rotations++;
      };
    },
  };
  return gateway;
}

beforeAll(async () => {
  ca = await TestCa.create(TD);
  idp = await startOidcIssuer({ audience: 'shop', scopes: ['payments:read'] });
  closers.push(() => idp.close());
  appPayments = await startApp();
  closers.push(() => appPayments.close());
  payments = await startTestSidecar(ca, PAYMENTS, config(appPayments.port));
  closers.push(() => payments.sidecar.close(0));
  ingress = await ca.issue({ id: INGRESS });
});

afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
});

async function callGateway(gateway: Gateway, token: string): Promise<{ status: number; body: string }> {
  const dispatcher = new Agent({
    connect: { cert: ingress.chainPem, key: ingress.keyPem, ca: ca.rootPem, checkServerIdentity: () => undefined },
  });
  try {
    const response = await request(`https://127.0.0.1:${gateway.sidecar.inboundPort}/pay/1`, {
      dispatcher,
      headers: { authorization: `Bearer ${token}` },
    });
    return { status: response.statusCode, body: await response.body.text() };
  } finally {
    await dispatcher.close();
  }
}

describe.each([
  ['HTTP/2', true],
  ['HTTP/1.1 (outbound.http2: false)', false],
])('a rotation between the passport link and the connection it leaves on, %s between the sidecars', (_name, http2) => {
  it('ok/the link is signed again for the new leaf: 200, and payments sees the end user', async () => {
    const gateway = await startGateway(http2);
    const token = await idp.getToken({ clientId: 'orders-client', scope: 'payments:read' });
    // A connection to payments exists (made with the first SVID) before the rotation.
    expect((await callGateway(gateway, token)).status).toBe(200);
    await gateway.rotateAfterNextWrap();
    const before = gateway.holder.current;
    const result = await callGateway(gateway, token);
    expect(gateway.rotations).toBe(1);
    expect(gateway.holder.current).not.toBe(before);
    expect(result.status, result.body).toBe(200);
    expect(appPayments.seen.at(-1)?.headers['x-meshauth-user']).toBeDefined();
    // And after it, with nothing in between, as before.
    expect((await callGateway(gateway, token)).status).toBe(200);
  });
});
