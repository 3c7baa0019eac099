// A user token past its `exp` but within the verifier's clock skew at the vouching sidecar: found by an outside
// test (2026-12-03). B accepted it, minted an origin passport expiring at the token's `exp` (already past, before its
// own `iat`) and handed the app `x-meshauth-user`; the app's next call through B's outbound was then refused as an
// unknown passport ("did not receive, or it has expired"), blaming the passport for the token's expiry. A passport
// never outlives the user's token, so B now refuses such a token as expired: 401 invalid_token, the app never sees
// it. Real sockets: A (client sidecar) → B (vouches; its app calls C through B's outbound) → C.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SignJWT } from 'jose';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { type SigningKey, signingKey } from '../helpers/end-user-keys.js';
import { captureLogger } from '../helpers/fault-harness.js';
import { FlappingJwks } from '../helpers/flapping-jwks.js';
import { startApp, startTestSidecar, type TestApp, type TestSidecar, testConfig } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

const AUDIENCE = 'shop';

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

let jwks: FlappingJwks;
let key: SigningKey;
let a: TestSidecar;
let b: TestSidecar;
let appB: TestApp;
let appC: TestApp;
const logB = captureLogger('sidecar');

/** B's app: calls C through B's outbound with the passport it received, and answers with C's answer. */
function forwardToC(req: IncomingMessage, res: ServerResponse): void {
  const passport = req.headers['x-meshauth-passport'];
  request(`http://127.0.0.1:${b.sidecar.outboundPort}${req.url}`, {
    headers: { host: 'c.mesh', ...(typeof passport === 'string' ? { 'x-meshauth-passport': passport } : {}) },
  }).then(
    async (downstream) => {
      const body = await downstream.body.text();
      res.writeHead(downstream.statusCode, { 'content-type': 'application/json' }).end(body);
    },
    (error: Error) => res.writeHead(500).end(error.message),
  );
}

function endUser(vouchers: string[]) {
  return {
    required: true,
    issuers: [{ issuer: jwks.url, audiences: [AUDIENCE], algorithms: ['ES256'], jwksUri: `${jwks.url}/jwks` }],
    vouchers,
  };
}

beforeAll(async () => {
  const ca = await TestCa.create('example.org');
  key = await signingKey('2026-12');
  jwks = new FlappingJwks();
  jwks.keys = [key];
  await jwks.up();
  cleanups.push(() => jwks.down().catch(() => undefined));
  const idB = ca.idFor('/ns/shop/sa/b');
  const idC = ca.idFor('/ns/shop/sa/c');

  appC = await startApp();
  cleanups.push(() => appC.close());
  const c = await startTestSidecar(
    ca,
    idC,
    sidecarConfigFromObject(
      {
        trustDomain: 'example.org',
        ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent/bundle.pem', token: '/nonexistent/token' },
        inbound: { listen: '127.0.0.1:0', app: `127.0.0.1:${appC.port}`, endUser: endUser([idB]) },
        outbound: { listen: '127.0.0.1:0', routes: {} },
        admin: { listen: '127.0.0.1:0' },
      },
      'vouch-expired-c',
    ),
  );
  cleanups.push(() => c.sidecar.close(0));

  appB = await startApp(forwardToC);
  cleanups.push(() => appB.close());
  b = await startTestSidecar(
    ca,
    idB,
    sidecarConfigFromObject(
      {
        trustDomain: 'example.org',
        ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent/bundle.pem', token: '/nonexistent/token' },
        inbound: { listen: '127.0.0.1:0', app: `127.0.0.1:${appB.port}`, endUser: endUser([]) },
        outbound: {
          listen: '127.0.0.1:0',
          routes: { 'c.mesh': { address: `127.0.0.1:${c.sidecar.inboundPort}`, ids: [idC] } },
        },
        admin: { listen: '127.0.0.1:0' },
      },
      'vouch-expired-b',
    ),
    { logger: logB.logger },
  );
  cleanups.push(() => b.sidecar.close(0));

  a = await startTestSidecar(
    ca,
    ca.idFor('/ns/shop/sa/a'),
    testConfig({ appPort: 1, routes: { 'b.mesh': { address: `127.0.0.1:${b.sidecar.inboundPort}`, ids: [idB] } } }),
  );
  cleanups.push(() => a.sidecar.close(0));
}, 30_000);

/** A token of `key` whose `exp` is `expInSeconds` from now (negative: in the past). */
function token(expInSeconds: number): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ scope: 'orders:read' })
    .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'JWT' })
    .setIssuer(jwks.url)
    .setAudience(AUDIENCE)
    .setSubject('alice')
    .setIssuedAt(now - 300)
    .setExpirationTime(now + expInSeconds)
    .sign(key.privateKey);
}

async function call(bearer: string): Promise<{ status: number; code?: string; challenge?: string }> {
  const dispatcher = new Agent();
  try {
    const res = await request(`http://127.0.0.1:${a.sidecar.outboundPort}/orders`, {
      headers: { host: 'b.mesh', authorization: `Bearer ${bearer}` },
      dispatcher,
    });
    const text = await res.body.text();
    const challenge = res.headers['www-authenticate'];
    return {
      status: res.statusCode,
      ...(res.statusCode === 200 ? {} : { code: (JSON.parse(text) as { code: string }).code }),
      ...(typeof challenge === 'string' ? { challenge } : {}),
    };
  } finally {
    await dispatcher.close();
  }
}

async function tokenResults(): Promise<Record<string, number>> {
  const { values } = await b.metrics.tokenVerifications.get();
  return Object.fromEntries(values.map((v) => [String(v.labels.result), v.value]));
}

describe('the vouching sidecar and a token just past its exp', () => {
  it('ok/a live token: B vouches, its app calls C with the passport, C sees the user', async () => {
    expect(await call(await token(120))).toEqual({ status: 200 });
    expect(appC.seen.at(-1)?.headers['x-meshauth-user']).toBeDefined();
  });

  it('fail/a token 5 s past exp (within the skew): 401 invalid_token as expired at B, never a passport', async () => {
    const appCalls = appB.seen.length;
    const before = await tokenResults();
    const result = await call(await token(-5));
    expect(result).toMatchObject({ status: 401, code: 'MESHAUTH_ERR_TOKEN_INVALID' });
    expect(result.challenge).toContain('error="invalid_token"');
    expect(appB.seen.length).toBe(appCalls); // no x-meshauth-user, no passport handed to B's app
    const after = await tokenResults();
    expect(after.expired ?? 0).toBe((before.expired ?? 0) + 1);
    expect(after.ok ?? 0, 'one token, one result: not also counted ok').toBe(before.ok ?? 0);
    const refusals = logB.records().filter((r) => r.code === 'MESHAUTH_ERR_TOKEN_INVALID');
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({ reason: 'expired' });
  });
});
