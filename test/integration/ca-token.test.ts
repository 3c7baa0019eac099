// POST /v1/token against a real CA on 127.0.0.1 port 0 (RFC 6749 §4.4, §5; RFC 8705 §2.1): a workload bootstraps an
// SVID with a join token, trades it over mTLS for a JWT-SVID, and an outsider verifies that token knowing only the
// discovery URL.
import { X509Certificate } from 'node:crypto';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, createLocalJWKSet, decodeProtectedHeader, type JSONWebKeySet, jwtVerify } from 'jose';
import { Agent, request } from 'undici';
import { beforeAll, describe, expect, it } from 'vitest';
import * as caClient from '../../src/agent/ca-client.js';
import { type CaServer, createJoinToken, loadCaMaterial, startCaServer } from '../../src/ca/index.js';
import type { MeshauthError } from '../../src/errors/index.js';
import { SpiffeId, TrustDomain } from '../../src/identity/index.js';
import { createCsrPem, createLeafCertificate, exportPrivateKeyPem, generateKeyPair } from '../../src/pki/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { makeCaDir } from '../helpers/ca-dir.js';
import { TestCa } from '../helpers/test-ca.js';

const ID = 'spiffe://example.org/ns/shop/sa/web';
const TD = TrustDomain.parse('example.org');
const AUDIENCE = 'https://api.example.com';

let dir: string;
let cleanupDir: () => void;
let server: CaServer;
let metrics: Metrics;
let bundlePem: string;
/** Trusts the CA bundle, presents no client certificate. */
let anonymous: Agent;
/** Trusts the CA bundle, presents the workload's SVID. */
let workload: Agent;
let svid: { chainPem: string; keyPem: string };

beforeAll(async () => {
  ({ dir, cleanup: cleanupDir } = await makeCaDir());
  metrics = new Metrics();
  server = await startCaServer({ dir, listen: '127.0.0.1:0', svidTtlMs: 10 * 60_000, logger: silentLogger(), metrics });
  bundlePem = (await loadCaMaterial(dir)).bundle.toPem();
  anonymous = new Agent({ connect: { ca: bundlePem } });
  svid = await bootstrapSvid(ID);
  workload = new Agent({ connect: { ca: bundlePem, cert: svid.chainPem, key: svid.keyPem } });
  return async () => {
    await Promise.all([anonymous.close(), workload.close()]);
    await server.close();
    cleanupDir();
  };
});

async function bootstrapSvid(id: string): Promise<{ chainPem: string; keyPem: string }> {
  const keys = await generateKeyPair('p256');
  const token = await createJoinToken({ dir, id, ttlMs: 60_000 });
  const response = await caClient.requestSvid(
    { caUrl: server.url, bundlePem, trustDomain: TD },
    { csrPem: await createCsrPem(keys), token },
  );
  return { chainPem: response.certChainPem.join(''), keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

async function postToken(dispatcher: Agent, body: string, contentType = 'application/x-www-form-urlencoded') {
  const response = await request(`${server.url}/v1/token`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': contentType },
    body,
  });
  return {
    status: response.statusCode,
    headers: response.headers,
    json: (await response.body.json()) as Record<string, unknown>,
  };
}

async function getJson(dispatcher: Agent, url: string): Promise<Record<string, unknown>> {
  const response = await request(url, { dispatcher });
  expect(response.statusCode).toBe(200);
  return (await response.body.json()) as Record<string, unknown>;
}

async function counter(which: 'rejected' | 'issued', label: string): Promise<number> {
  const { values } = which === 'rejected' ? await metrics.caRequestsRejected.get() : await metrics.caSvidsIssued.get();
  return values.find((v) => Object.values(v.labels).includes(label))?.value ?? 0;
}

describe('POST /v1/token', () => {
  it('ok/JWT-SVID over mTLS, verified by an outsider from the discovery URL alone', async () => {
    const issuedBefore = await counter('issued', 'jwt');
    const response = await postToken(
      workload,
      `grant_type=client_credentials&audience=${encodeURIComponent(AUDIENCE)}`,
    );
    expect(response.status).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.json).toMatchObject({
      token_type: 'Bearer',
      expires_in: 300,
      issued_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    });
    const token = response.json.access_token as string;

    // The outsider: it knows the discovery URL and trusts the CA bundle. jose's createRemoteJWKSet fetches with the
    // global fetch, which cannot be given a private CA without process-wide settings, so the JWKS is fetched here
    // with undici (trusting the bundle) and handed to createLocalJWKSet.
    const discovery = await getJson(anonymous, `${server.url}/.well-known/openid-configuration`);
    expect(discovery).toEqual({
      issuer: server.url,
      jwks_uri: `${server.url}/v1/jwks`,
      token_endpoint: `${server.url}/v1/token`,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['ES256'],
      grant_types_supported: ['client_credentials'],
      token_endpoint_auth_methods_supported: ['tls_client_auth'],
      claims_supported: ['sub', 'aud', 'exp', 'iat', 'iss', 'jti'],
      scopes_supported: ['openid'],
      tls_client_certificate_bound_access_tokens: false,
    });
    const jwks = (await getJson(anonymous, discovery.jwks_uri as string)) as unknown as JSONWebKeySet;
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks), {
      issuer: discovery.issuer as string,
      audience: AUDIENCE,
      algorithms: ['ES256'],
      typ: 'JWT',
    });
    // W1: only alg, kid, typ in the header. W4–W6: sub, a single aud, exp ≤ 5 min.
    expect(Object.keys(protectedHeader).sort()).toEqual(['alg', 'kid', 'typ']);
    expect(protectedHeader).toMatchObject({ alg: 'ES256', typ: 'JWT' });
    expect(payload.sub).toBe(ID);
    expect(payload.aud).toEqual([AUDIENCE]);
    expect((payload.exp as number) - (payload.iat as number)).toBe(300);
    expect(typeof payload.jti).toBe('string');
    expect(Object.keys(payload).sort()).toEqual(['aud', 'exp', 'iat', 'iss', 'jti', 'sub']);
    const [key] = jwks.keys;
    expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig', kid: protectedHeader.kid });
    expect(key?.d).toBeUndefined();
    expect(await counter('issued', 'jwt')).toBe(issuedBefore + 1);
  });

  it('ok/RFC 8707 resource= names the audience; matching client_id is accepted', async () => {
    const response = await postToken(
      workload,
      new URLSearchParams({ grant_type: 'client_credentials', resource: AUDIENCE, client_id: ID }).toString(),
    );
    expect(response.status).toBe(200);
    expect(decodePayload(response.json.access_token as string).aud).toEqual([AUDIENCE]);
  });

  it('ok/new connections from a client with a TLS session cache still authenticate (no resumption)', async () => {
    // A resumed TLS session carries no client chain; the CA turns resumption off so this never fails (RFC 8705 §3).
    for (let i = 0; i < 3; i++) {
      const response = await request(`${server.url}/v1/token`, {
        method: 'POST',
        dispatcher: workload,
        reset: true, // `connection: close`: the next request needs a new TLS connection
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `grant_type=client_credentials&audience=${encodeURIComponent(AUDIENCE)}`,
      });
      expect(response.statusCode, await response.body.text()).toBe(200);
    }
  });

  it('ok/the shared CA client (requestJwtSvid) returns the token', async () => {
    const response = await caClient.requestJwtSvid(
      { caUrl: server.url, bundlePem, trustDomain: TD, clientCertPem: svid.chainPem, clientKeyPem: svid.keyPem },
      { audience: 'spiffe://partner.example/api' },
    );
    expect(response.expiresIn).toBe(300);
    expect(decodePayload(response.accessToken)).toMatchObject({ sub: ID, aud: ['spiffe://partner.example/api'] });
  });

  it('ok/jwt.key is 0600 and its kid is the RFC 7638 thumbprint', async () => {
    expect(statSync(join(dir, 'jwt.key')).mode & 0o777).toBe(0o600);
    const jwks = (await getJson(anonymous, `${server.url}/v1/jwks`)) as unknown as JSONWebKeySet;
    const [key] = jwks.keys;
    const { kty, crv, x, y } = key as Record<string, string>;
    expect(key?.kid).toBe(await calculateJwkThumbprint({ kty, crv, x, y } as never, 'sha256'));
  });

  const expiredCert = async () => {
    const material = await loadCaMaterial(dir);
    const keys = await generateKeyPair('p256');
    const leaf = await createLeafCertificate({
      id: SpiffeId.parse(ID),
      publicKey: keys.publicKey,
      issuer: material.issuer,
      now: new Date(Date.now() - 3 * 3_600_000),
      ttlMs: 3_600_000,
    });
    return {
      cert: `${leaf.toString('pem')}\n${material.intermediatePem}`,
      key: await exportPrivateKeyPem(keys.privateKey),
    };
  };
  const foreignCert = async () => {
    const foreign = await (await TestCa.create('example.org')).issue({ id: ID });
    return { cert: foreign.chainPem, key: foreign.keyPem };
  };
  const form = `grant_type=client_credentials&audience=${encodeURIComponent(AUDIENCE)}`;
  const cases: [
    name: string,
    client: 'workload' | 'anonymous' | (() => Promise<{ cert: string; key: string }>),
    body: string,
    contentType: string | undefined,
    status: number,
    error: string,
    reason: string,
  ][] = [
    ['fail/no client certificate', 'anonymous', form, undefined, 401, 'invalid_client', 'no_credential'],
    ['fail/expired client certificate', expiredCert, form, undefined, 401, 'invalid_client', 'client_cert_expired'],
    [
      'fail/certificate of another CA (same trust domain)',
      foreignCert,
      form,
      undefined,
      401,
      'invalid_client',
      'client_cert_unknown_ca',
    ],
    [
      'fail/client_id names someone else',
      'workload',
      `${form}&client_id=${encodeURIComponent('spiffe://example.org/ns/kube-system/sa/admin')}`,
      undefined,
      401,
      'invalid_client',
      'client_id_mismatch',
    ],
    [
      'fail/grant_type=password',
      'workload',
      `grant_type=password&audience=${encodeURIComponent(AUDIENCE)}`,
      undefined,
      400,
      'unsupported_grant_type',
      'unsupported_grant_type',
    ],
    ['fail/no grant_type', 'workload', 'audience=x', undefined, 400, 'invalid_request', 'missing_grant_type'],
    [
      'fail/no audience',
      'workload',
      'grant_type=client_credentials',
      undefined,
      400,
      'invalid_request',
      'missing_audience',
    ],
    [
      'fail/audience twice',
      'workload',
      `${form}&audience=https://other.example`,
      undefined,
      400,
      'invalid_request',
      'duplicate_parameter',
    ],
    [
      'fail/audience with a space',
      'workload',
      'grant_type=client_credentials&audience=a+b',
      undefined,
      400,
      'invalid_target',
      'audience_invalid',
    ],
    [
      'fail/resource is not an absolute URI',
      'workload',
      'grant_type=client_credentials&resource=api',
      undefined,
      400,
      'invalid_target',
      'resource_invalid',
    ],
    [
      'fail/audience and resource differ',
      'workload',
      `${form}&resource=https://other.example`,
      undefined,
      400,
      'invalid_target',
      'audience_resource_mismatch',
    ],
    [
      'fail/JSON body instead of a form (400, not 415: RFC 6749 §3.2 clients expect an OAuth error)',
      'workload',
      JSON.stringify({ grant_type: 'client_credentials', audience: AUDIENCE }),
      'application/json',
      400,
      'invalid_request',
      'unsupported_media_type',
    ],
  ];
  it.each(cases)('%s', async (_name, client, body, contentType, status, error, reason) => {
    let dispatcher = client === 'workload' ? workload : anonymous;
    let own: Agent | undefined;
    if (typeof client === 'function') {
      const { cert, key } = await client();
      own = new Agent({ connect: { ca: bundlePem, cert, key } });
      dispatcher = own;
    }
    try {
      const before = await counter('rejected', reason);
      const response = await postToken(dispatcher, body, contentType ?? 'application/x-www-form-urlencoded');
      expect(response.status, JSON.stringify(response.json)).toBe(status);
      expect(response.headers['cache-control']).toBe('no-store');
      expect(response.json.error).toBe(error);
      expect(typeof response.json.error_description).toBe('string');
      expect(response.json.code).toBe(
        status === 401 ? 'MESHAUTH_ERR_CA_UNAUTHENTICATED' : 'MESHAUTH_ERR_CA_BAD_REQUEST',
      );
      expect(response.json.access_token).toBeUndefined();
      expect(await counter('rejected', reason)).toBe(before + 1);
    } finally {
      await own?.close();
    }
  });

  it('fail/a client certificate with under 30 s left → 401 invalid_client saying so; ok/with 40 s the token ends with it', async () => {
    /** A token asked for by a workload whose SVID, from a replica of this CA issuing `ttlMs` SVIDs, is brand new. */
    const askWithSvidOf = async (ttlMs: number) => {
      const replica = await startCaServer({
        dir,
        listen: '127.0.0.1:0',
        svidTtlMs: ttlMs,
        logger: silentLogger(),
        metrics: new Metrics(),
      });
      const keys = await generateKeyPair('p256');
      const issued = await caClient.requestSvid(
        { caUrl: replica.url, bundlePem, trustDomain: TD },
        { csrPem: await createCsrPem(keys), token: await createJoinToken({ dir, id: ID, ttlMs: 60_000 }) },
      );
      const chainPem = issued.certChainPem.join('');
      const client = new Agent({
        connect: { ca: bundlePem, cert: chainPem, key: await exportPrivateKeyPem(keys.privateKey) },
      });
      try {
        const response = await request(`${replica.url}/v1/token`, {
          method: 'POST',
          dispatcher: client,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: 'grant_type=client_credentials&audience=shop',
        });
        const json = (await response.body.json()) as Record<string, unknown>;
        return { status: response.statusCode, json, notAfter: Date.parse(new X509Certificate(chainPem).validTo) };
      } finally {
        await client.close();
        await replica.close();
      }
    };
    const refused = await askWithSvidOf(20_000);
    expect(refused.status).toBe(401);
    expect(refused.json).toMatchObject({ error: 'invalid_client', code: 'MESHAUTH_ERR_CA_UNAUTHENTICATED' });
    expect(String(refused.json.error_description)).toMatch(/expires in under 30 s .*: renew it first/);
    const issued = await askWithSvidOf(40_000);
    expect(issued.status).toBe(200);
    expect(issued.json.expires_in).toBeLessThanOrEqual(40);
    expect(Number(decodePayload(String(issued.json.access_token)).exp) * 1000).toBeLessThanOrEqual(issued.notAfter);
  });

  it('fail/GET /v1/token → 405 in the OAuth error shape', async () => {
    const response = await request(`${server.url}/v1/token`, { dispatcher: workload });
    expect(response.statusCode).toBe(405);
    expect(await response.body.json()).toMatchObject({
      error: 'invalid_request',
      code: 'MESHAUTH_ERR_CA_METHOD_NOT_ALLOWED',
    });
  });

  it('fail/the shared CA client surfaces the OAuth rejection with its status', async () => {
    const error = await caClient
      .requestJwtSvid({ caUrl: server.url, bundlePem, trustDomain: TD }, { audience: AUDIENCE })
      .catch((e: unknown) => e as MeshauthError);
    expect((error as MeshauthError).code).toBe('MESHAUTH_ERR_CA_UNAUTHENTICATED');
    expect(caClient.caStatusOf(error)).toBe(401);
  });
});

describe('ca serve options for JWT-SVIDs', () => {
  it('ok/--issuer-url, --jwt-ttl, and jwt.key created lazily for an older CA directory', async () => {
    const older = await makeCaDir();
    try {
      rmSync(join(older.dir, 'jwt.key'));
      const issuer = 'https://ca.mesh.example:8443';
      const other = await startCaServer({
        dir: older.dir,
        listen: '127.0.0.1:0',
        svidTtlMs: 10 * 60_000,
        jwtTtlMs: 60_000,
        issuerUrl: issuer,
        logger: silentLogger(),
        metrics: new Metrics(),
      });
      try {
        expect(statSync(join(older.dir, 'jwt.key')).mode & 0o777).toBe(0o600);
        const keyPem = readFileSync(join(older.dir, 'jwt.key'), 'utf8');
        const otherBundle = (await loadCaMaterial(older.dir)).bundle.toPem();
        const keys = await generateKeyPair('p256');
        const token = await createJoinToken({ dir: older.dir, id: ID, ttlMs: 60_000 });
        const issued = await caClient.requestSvid(
          { caUrl: other.url, bundlePem: otherBundle, trustDomain: TD },
          { csrPem: await createCsrPem(keys), token },
        );
        const jwt = await caClient.requestJwtSvid(
          {
            caUrl: other.url,
            bundlePem: otherBundle,
            trustDomain: TD,
            clientCertPem: issued.certChainPem.join(''),
            clientKeyPem: await exportPrivateKeyPem(keys.privateKey),
          },
          { audience: AUDIENCE },
        );
        expect(jwt.expiresIn).toBe(60);
        const payload = decodePayload(jwt.accessToken);
        expect(payload.iss).toBe(issuer);
        expect((payload.exp as number) - (payload.iat as number)).toBe(60);
        const otherAgent = new Agent({ connect: { ca: otherBundle } });
        try {
          const discovery = await getJson(otherAgent, `${other.url}/.well-known/openid-configuration`);
          expect(discovery).toMatchObject({ issuer, jwks_uri: `${issuer}/v1/jwks` });
          // The key is the one on disk: a restart (or a replica) publishes the same kid.
          const jwks = (await getJson(otherAgent, `${other.url}/v1/jwks`)) as unknown as JSONWebKeySet;
          expect(decodeProtectedHeader(jwt.accessToken).kid).toBe(jwks.keys[0]?.kid);
        } finally {
          await otherAgent.close();
        }
        expect(readFileSync(join(older.dir, 'jwt.key'), 'utf8')).toBe(keyPem);
      } finally {
        await other.close();
      }
    } finally {
      older.cleanup();
    }
  });
});

function decodePayload(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}
