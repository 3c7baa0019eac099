// The CA's JWT-SVIDs as API credentials at the gateway (workloads outside the mesh): a workload gets a JWT-SVID
// for the gateway's audience from the real CA (`POST /v1/token`, mTLS with its SVID) and reaches the app two hops
// down as its SPIFFE ID; a JWT-SVID for another audience, or a forged one, is refused with 401 invalid_token.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as caClient from '../../src/agent/ca-client.js';
import {
  type CaServer,
  createJoinToken,
  loadCaMaterial,
  loadOrCreateJwtSigningKey,
  startCaServer,
} from '../../src/ca/index.js';
import { TrustDomain } from '../../src/identity/index.js';
import { createCsrPem, exportPrivateKeyPem, generateKeyPair } from '../../src/pki/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { makeCaDir } from '../helpers/ca-dir.js';
import { type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';

const JOB = 'spiffe://example.org/ns/batch/sa/reports';

describe('gateway API clients with JWT-SVIDs', () => {
  let ca: CaServer;
  let cleanup: () => void;
  let dir: string;
  let bundlePem: string;
  let mesh: GatewayMesh;
  let workload: Agent;
  let gatewayAgent: Agent;

  beforeAll(async () => {
    ({ dir, cleanup } = await makeCaDir());
    ca = await startCaServer({
      dir,
      listen: '127.0.0.1:0',
      svidTtlMs: 600_000,
      logger: silentLogger(),
      metrics: new Metrics(),
    });
    bundlePem = (await loadCaMaterial(dir)).bundle.toPem();
    const keys = await generateKeyPair('p256');
    const svid = await caClient.requestSvid(
      { caUrl: ca.url, bundlePem, trustDomain: TrustDomain.parse('example.org') },
      { csrPem: await createCsrPem(keys), token: await createJoinToken({ dir, id: JOB, ttlMs: 60_000 }) },
    );
    workload = new Agent({
      connect: { ca: bundlePem, cert: svid.certChainPem.join(''), key: await exportPrivateKeyPem(keys.privateKey) },
    });
    const bundleFile = join(dir, 'gateway-bundle.pem');
    writeFileSync(bundleFile, bundlePem);
    mesh = await startGatewayMesh({
      gateway: (base) => ({
        ...base,
        ca: { ...(base.ca as object), url: ca.url, bundle: bundleFile },
        jwtSvids: { audiences: ['shop-gateway'] },
      }),
    });
    gatewayAgent = new Agent({ connect: { ca: mesh.ca.rootPem } });
  });
  afterAll(async () => {
    await gatewayAgent?.close();
    await workload?.close();
    await mesh?.close();
    await ca?.close();
    cleanup?.();
  });

  const jwtSvid = async (audience: string) => {
    const response = await request(`${ca.url}/v1/token`, {
      method: 'POST',
      dispatcher: workload,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', audience }).toString(),
    });
    const body = (await response.body.json()) as { access_token: string };
    return body.access_token;
  };
  const call = async (token: string) => {
    const response = await request(`${mesh.origin}/shop/jobs`, {
      dispatcher: gatewayAgent,
      headers: { authorization: `Bearer ${token}` },
    });
    return { status: response.statusCode, headers: response.headers, text: await response.body.text() };
  };

  it('ok/a JWT-SVID for the gateway audience reaches the app as the workload SPIFFE ID', async () => {
    const answer = await call(await jwtSvid('shop-gateway'));
    expect(answer.status, answer.text).toBe(200);
    const seen = JSON.parse(answer.text);
    expect(seen.user.sub).toBe(JOB);
    expect(seen.next.user.sub).toBe(JOB);
    expect(seen.next.chain).toEqual([mesh.gatewayId, mesh.webId]);
  });

  it('fail/a JWT-SVID for another audience is refused', async () => {
    const answer = await call(await jwtSvid('billing'));
    expect(answer.status).toBe(401);
    expect(answer.headers['www-authenticate']).toContain('error="invalid_token"');
  });

  it('fail/a token naming the CA as issuer but signed with another key is refused', async () => {
    const { privateKey } = await generateKeyPair('p256');
    const forged = await new SignJWT({ sub: JOB })
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: 'forged' })
      .setIssuer(ca.url)
      .setAudience('shop-gateway')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);
    const answer = await call(forged);
    expect(answer.status).toBe(401);
  });

  it('fail/a JWT-SVID 5 s past exp (within the skew): 401 invalid_token, counted once, as jwt_svid_expired', async () => {
    // Signed with the CA's own key: only its exp is wrong for a passport (the gateway would mint one for it).
    const key = await loadOrCreateJwtSigningKey(dir, undefined, false);
    const now = Math.floor(Date.now() / 1000);
    const late = await new SignJWT({ sub: JOB })
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: key.kid })
      .setIssuer(ca.url)
      .setAudience('shop-gateway')
      .setIssuedAt(now - 60)
      .setExpirationTime(now - 5)
      .sign(key.privateKey);
    const results = async () => {
      const { values } = await mesh.metrics.tokenVerifications.get();
      return Object.fromEntries(values.map((v) => [String(v.labels.result), v.value]));
    };
    const before = await results();
    const answer = await call(late);
    expect(answer.status, answer.text).toBe(401);
    expect(answer.headers['www-authenticate']).toContain('error="invalid_token"');
    const after = await results();
    expect(after.jwt_svid_expired ?? 0).toBe((before.jwt_svid_expired ?? 0) + 1);
    expect(after.ok ?? 0, 'one token, one result: not also counted ok').toBe(before.ok ?? 0);
  });
});
