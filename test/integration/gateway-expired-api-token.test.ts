// An API token past its `exp` but within the verifier's clock skew at the gateway: found with the vouching-sidecar
// case by an outside test (2026-12-03). The gateway accepted it, minted an origin passport expiring at the token's
// `exp` (already past) and then refused its own passport as unknown ("did not receive, or it has expired"): 401
// MESHAUTH_ERR_PASSPORT_INVALID for what is an expired token. A passport never outlives the user's token, so the
// gateway now refuses such a token as expired: 401 invalid_token, nothing forwarded.
import { SignJWT } from 'jose';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SigningKey, signingKey } from '../helpers/end-user-keys.js';
import { FlappingJwks } from '../helpers/flapping-jwks.js';
import { type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';

let jwks: FlappingJwks;
let key: SigningKey;
let mesh: GatewayMesh;
let agent: Agent;

beforeAll(async () => {
  key = await signingKey('api-1');
  jwks = new FlappingJwks();
  jwks.keys = [key];
  await jwks.up();
  mesh = await startGatewayMesh({
    gateway: (base) => ({
      ...base,
      apiIssuers: [{ issuer: jwks.url, audiences: ['shop-api'], algorithms: ['ES256'], jwksUri: `${jwks.url}/jwks` }],
    }),
  });
  agent = new Agent({ connect: { ca: mesh.ca.rootPem } });
}, 30_000);

afterAll(async () => {
  await agent?.close();
  await mesh?.close();
  await jwks?.down();
});

/** A token whose `exp` is `expInSeconds` from now (negative: in the past). */
function token(expInSeconds: number): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ scope: 'orders:read' })
    .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'JWT' })
    .setIssuer(jwks.url)
    .setAudience('shop-api')
    .setSubject('reports-job')
    .setIssuedAt(now - 300)
    .setExpirationTime(now + expInSeconds)
    .sign(key.privateKey);
}

async function call(bearer: string) {
  const response = await request(`${mesh.origin}/shop/jobs`, {
    dispatcher: agent,
    headers: { authorization: `Bearer ${bearer}` },
  });
  return { status: response.statusCode, headers: response.headers, text: await response.body.text() };
}

async function tokenResults(): Promise<Record<string, number>> {
  const { values } = await mesh.metrics.tokenVerifications.get();
  return Object.fromEntries(values.map((v) => [String(v.labels.result), v.value]));
}

describe('the gateway and an API token just past its exp', () => {
  it('ok/a live token reaches the app two hops down', async () => {
    const answer = await call(await token(120));
    expect(answer.status, answer.text).toBe(200);
    expect(JSON.parse(answer.text).next.user.sub).toBe('reports-job');
  });

  it('fail/a token 5 s past exp (within the skew): 401 invalid_token as expired, nothing forwarded', async () => {
    const seen = mesh.webApp.seen.length;
    const before = await tokenResults();
    const answer = await call(await token(-5));
    expect(answer.status).toBe(401);
    expect(JSON.parse(answer.text).code).toBe('MESHAUTH_ERR_TOKEN_INVALID');
    expect(answer.headers['www-authenticate']).toContain('error="invalid_token"');
    expect(mesh.webApp.seen.length).toBe(seen);
    const after = await tokenResults();
    expect(after.expired ?? 0).toBe((before.expired ?? 0) + 1);
    expect(after.ok ?? 0, 'one token, one result: not also counted ok').toBe(before.ok ?? 0);
  });
});
