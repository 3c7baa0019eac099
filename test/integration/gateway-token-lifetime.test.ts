// The gateway's `limits.maxTokenLifetime` through a running gateway: an API bearer token whose `exp` lies further
// ahead than the limit (default 24 h, plus the clock skew, counted from now) is refused before anything is forwarded,
// as one minted by a signer that erred or was misused would otherwise be honoured for years. The refusal is the one
// for any bad bearer token (401 MESHAUTH_ERR_TOKEN_INVALID, `error="invalid_token"`); only the metric and the log
// line say `lifetime`. A gateway configured with a longer limit lets the same token through: the setting, not the
// verifier's own default, decides. The unit tests cover the rule; this covers its wiring from config to the edge.
import { SignJWT } from 'jose';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EDGE_RULES } from '../../src/authz/index.js';
import { type SigningKey, signingKey } from '../helpers/end-user-keys.js';
import { FlappingJwks } from '../helpers/flapping-jwks.js';
import { type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';

const HOUR = 3600;
const DAY = 24 * HOUR;
/** Ten years of 365 days: the raised limit below is just above it. */
const TEN_YEARS = 3650 * DAY;

let jwks: FlappingJwks;
let key: SigningKey;
/** limits.maxTokenLifetime left at its default. */
let standard: GatewayMesh;
/** limits.maxTokenLifetime raised past ten years. */
let raised: GatewayMesh;
let standardClient: Agent;
let raisedClient: Agent;

function startMesh(limits?: Record<string, unknown>): Promise<GatewayMesh> {
  return startGatewayMesh({
    gateway: (base) => ({
      ...base,
      apiIssuers: [{ issuer: jwks.url, audiences: ['shop-api'], algorithms: ['ES256'], jwksUri: `${jwks.url}/jwks` }],
      ...(limits === undefined ? {} : { limits }),
    }),
  });
}

beforeAll(async () => {
  key = await signingKey('api-1');
  jwks = new FlappingJwks();
  jwks.keys = [key];
  await jwks.up();
  standard = await startMesh();
  raised = await startMesh({ maxTokenLifetime: '3660d' });
  standardClient = new Agent({ connect: { ca: standard.ca.rootPem } });
  raisedClient = new Agent({ connect: { ca: raised.ca.rootPem } });
}, 60_000);

afterAll(async () => {
  await standardClient?.close();
  await raisedClient?.close();
  await standard?.close();
  await raised?.close();
  await jwks?.down();
});

/** A token of the API issuer whose `exp` is `expIn` seconds from now and whose `iat` is `iatAgo` seconds before it. */
function token(expIn: number, iatAgo = 60): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ scope: 'orders:read' })
    .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'JWT' })
    .setIssuer(jwks.url)
    .setAudience('shop-api')
    .setSubject('reports-job')
    .setIssuedAt(now - iatAgo)
    .setExpirationTime(now + expIn)
    .sign(key.privateKey);
}

async function call(mesh: GatewayMesh, client: Agent, bearer: string) {
  const response = await request(`${mesh.origin}/shop/jobs`, {
    dispatcher: client,
    headers: { authorization: `Bearer ${bearer}` },
  });
  return { status: response.statusCode, headers: response.headers, text: await response.body.text() };
}

/** What a refusal is seen by: the verifier's result, the edge decision and the gateway's log line. */
async function counts(mesh: GatewayMesh) {
  const results = (await mesh.metrics.tokenVerifications.get()).values;
  const decisions = (await mesh.metrics.gatewayDecisions.get()).values;
  return {
    lifetime: results.find((v) => v.labels.result === 'lifetime')?.value ?? 0,
    ok: results.find((v) => v.labels.result === 'ok')?.value ?? 0,
    authenticationDenies:
      decisions.find(
        (v) => v.labels.route === 'web' && v.labels.decision === 'deny' && v.labels.rule === EDGE_RULES.authentication,
      )?.value ?? 0,
    lifetimeLines: mesh.log.find({ msg: 'gateway deny', reason: 'lifetime' }).length,
    forwarded: mesh.webApp.seen.length,
  };
}

describe('gateway: limits.maxTokenLifetime at its default (24 h)', () => {
  it.for<[string, number, number]>([
    ['a 1 h token', HOUR, 60],
    // Counted from now, not from iat (which a token need not carry): an old token with an hour left is fine.
    ['a token issued a year ago with 1 h left', HOUR, 365 * DAY],
  ])('ok/%s is forwarded two hops down', async ([_name, expIn, iatAgo]) => {
    const before = await counts(standard);
    const answer = await call(standard, standardClient, await token(expIn, iatAgo));
    expect(answer.status, answer.text).toBe(200);
    expect(JSON.parse(answer.text).next.user.sub).toBe('reports-job');
    const after = await counts(standard);
    expect(after.ok).toBe(before.ok + 1);
    expect(after.lifetime).toBe(before.lifetime);
  });

  it.for<[string, number]>([
    ['25 h', 25 * HOUR],
    ['10 years', TEN_YEARS],
  ])(
    'fail/a token whose exp is %s ahead: 401 invalid_token, reason lifetime, nothing forwarded',
    async ([_name, expIn]) => {
      const before = await counts(standard);
      const answer = await call(standard, standardClient, await token(expIn));
      expect(answer.status).toBe(401);
      const body = JSON.parse(answer.text);
      expect(body.code).toBe('MESHAUTH_ERR_TOKEN_INVALID');
      // The reason is for the operator: the client gets the code's fixed sentence only.
      expect(answer.text).not.toMatch(/lifetime|ahead/);
      expect(answer.headers['www-authenticate']).toContain('error="invalid_token"');
      const after = await counts(standard);
      expect(after.forwarded).toBe(before.forwarded);
      expect(after.lifetime).toBe(before.lifetime + 1);
      expect(after.ok).toBe(before.ok);
      expect(after.authenticationDenies).toBe(before.authenticationDenies + 1);
      expect(after.lifetimeLines).toBe(before.lifetimeLines + 1);
      const line = standard.log.find({ msg: 'gateway deny', reason: 'lifetime' }).at(-1);
      expect(line).toMatchObject({
        event: 'gateway_deny',
        route: 'web',
        rule: EDGE_RULES.authentication,
        code: 'MESHAUTH_ERR_TOKEN_INVALID',
        issuer: jwks.url,
        kid: key.kid,
      });
    },
  );
});

describe('gateway: limits.maxTokenLifetime raised to 3660d', () => {
  it('ok/the 10-year token is forwarded two hops down', async () => {
    const before = await counts(raised);
    const answer = await call(raised, raisedClient, await token(TEN_YEARS));
    expect(answer.status, answer.text).toBe(200);
    expect(JSON.parse(answer.text).next.user.sub).toBe('reports-job');
    const after = await counts(raised);
    expect(after.ok).toBe(before.ok + 1);
    expect(after.lifetime).toBe(before.lifetime);
  });

  it('fail/a token past the raised limit (3670 days) is still refused as lifetime', async () => {
    const before = await counts(raised);
    const answer = await call(raised, raisedClient, await token(3670 * DAY));
    expect(answer.status).toBe(401);
    expect(JSON.parse(answer.text).code).toBe('MESHAUTH_ERR_TOKEN_INVALID');
    const after = await counts(raised);
    expect(after.lifetime).toBe(before.lifetime + 1);
    expect(after.forwarded).toBe(before.forwarded);
  });
});
