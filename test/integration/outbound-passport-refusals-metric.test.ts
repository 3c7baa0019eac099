// A passport the outbound refuses to wrap is counted in meshauth_passport_verifications_total under its reason, as
// the inbound's verification results are: before, an app sending its sidecar a passport it never received (or one
// for a route with no single audience) showed only in meshauth_requests_rejected_total, so a dashboard on the
// passport metric could not see apps injecting passports. Real sockets: a caller with an SVID and a token → B (vouches;
// its app calls out through B's outbound with a forged or a received passport), B's /metrics scraped.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { endUserToken, jwksFile, type SigningKey, signingKey } from '../helpers/end-user-keys.js';
import { startApp, startTestSidecar, type TestSidecar } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

const TD = 'example.org';
const ISSUER = 'https://idp.example.test';
const AUDIENCE = 'shop';
const PAYMENTS = `spiffe://${TD}/ns/shop/sa/payments`;
const LEDGER = `spiffe://${TD}/ns/shop/sa/ledger`;
/** What B's app sends as its passport instead of the one it received: no sidecar ever saw it. */
const FORGED = 'eyJhbGciOiJFUzI1NiJ9.e30.c2ln';

const cleanups: (() => Promise<void> | void)[] = [];
let ca: TestCa;
let key: SigningKey;
let b: TestSidecar;
let caller: Agent;

/**
 * B's app: calls `x-test-host` through B's outbound with the passport it received, or with FORGED when
 * `x-test-forge` is set, and answers with the outbound's answer.
 */
function callingOut(req: IncomingMessage, res: ServerResponse): void {
  const received = req.headers['x-meshauth-passport'];
  const passport = req.headers['x-test-forge'] === undefined ? received : FORGED;
  request(`http://127.0.0.1:${b.sidecar.outboundPort}/`, {
    headers: {
      host: String(req.headers['x-test-host']),
      ...(typeof passport === 'string' ? { 'x-meshauth-passport': passport } : {}),
    },
  }).then(
    async (out) => {
      const body = await out.body.text();
      res.writeHead(out.statusCode, { 'content-type': 'application/json' }).end(body);
    },
    (error: Error) => res.writeHead(500).end(error.message),
  );
}

beforeAll(async () => {
  ca = await TestCa.create(TD);
  key = await signingKey('k1');
  const jwks = jwksFile('meshauth-outbound-passport-metric-', key);
  cleanups.push(() => jwks.remove());
  const app = await startApp(callingOut);
  cleanups.push(() => app.close());
  const config = sidecarConfigFromObject(
    {
      trustDomain: TD,
      ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent/bundle.pem', token: '/nonexistent/token' },
      inbound: {
        listen: '127.0.0.1:0',
        app: `127.0.0.1:${app.port}`,
        endUser: { issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], algorithms: ['ES256'], jwksUri: jwks.uri }] },
      },
      outbound: {
        listen: '127.0.0.1:0',
        // Both refusals come before any connection: the addresses are never dialled.
        routes: {
          'payments.shop': { address: '127.0.0.1:1', ids: [PAYMENTS] },
          'either.shop': { address: '127.0.0.1:1', ids: [PAYMENTS, LEDGER] },
        },
      },
      admin: { listen: '127.0.0.1:0' },
    },
    'outbound-passport-refusals-metric-test',
  );
  b = await startTestSidecar(ca, ca.idFor('/ns/shop/sa/orders'), config);
  cleanups.push(() => b.sidecar.close(0));
  const web = await ca.issue({ id: ca.idFor('/ns/shop/sa/web') });
  caller = new Agent({
    connect: { cert: web.chainPem, key: web.keyPem, ca: ca.rootPem, checkServerIdentity: () => undefined },
  });
  cleanups.push(() => caller.close());
}, 30_000);

afterAll(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

/** A request to B's inbound with alice's token; B's app calls `host` out as `extra` says. */
async function callB(host: string, extra: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const token = await endUserToken(key, ISSUER, AUDIENCE);
  const response = await request(`https://127.0.0.1:${b.sidecar.inboundPort}/`, {
    dispatcher: caller,
    headers: { authorization: `Bearer ${token}`, 'x-test-host': host, ...extra },
  });
  return { status: response.statusCode, body: await response.body.text() };
}

/** The value of one series in B's /metrics (0 when absent). */
async function scraped(series: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${b.sidecar.adminPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

const REJECTED_OUTBOUND = 'meshauth_requests_rejected_total{direction="outbound",code="MESHAUTH_ERR_PASSPORT_INVALID"}';

describe("the outbound's passport refusals in meshauth_passport_verifications_total", () => {
  const cases = [
    {
      name: 'fail/the app sends a passport B never received',
      host: 'payments.shop',
      forge: true,
      result: 'unknown_passport',
    },
    {
      name: 'fail/the app forwards its passport to a route naming two IDs',
      host: 'either.shop',
      forge: false,
      result: 'route_audience',
    },
  ] as const;
  for (const c of cases) {
    it(`${c.name} → 401 ${c.result}, counted once under result="${c.result}"`, async () => {
      const series = `meshauth_passport_verifications_total{result="${c.result}"}`;
      const before = await scraped(series);
      const rejectedBefore = await scraped(REJECTED_OUTBOUND);
      const result = await callB(c.host, c.forge ? { 'x-test-forge': '1' } : {});
      expect(result.status, result.body).toBe(401);
      expect(JSON.parse(result.body)).toMatchObject({ code: 'MESHAUTH_ERR_PASSPORT_INVALID' });
      expect(await scraped(series)).toBe(before + 1);
      expect(await scraped(REJECTED_OUTBOUND)).toBe(rejectedBefore + 1);
    });
  }
});
