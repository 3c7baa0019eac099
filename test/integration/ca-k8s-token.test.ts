// Kubernetes projected service-account tokens on POST /v1/svid: tokens shaped like kubelet's, signed here with jose,
// verified by the CA against a JWKS file (and a JWKS URL on 127.0.0.1).
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { exportJWK, generateKeyPair as generateJoseKeyPair, type JWTPayload, SignJWT } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import * as caClient from '../../src/agent/ca-client.js';
import { type CaServer, loadCaMaterial, startCaServer } from '../../src/ca/index.js';
import type { MeshauthError } from '../../src/errors/index.js';
import { TrustDomain } from '../../src/identity/index.js';
import { createCsrPem, generateKeyPair, parseCertificatesPem, uriSans } from '../../src/pki/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { makeCaDir } from '../helpers/ca-dir.js';
import { caRejections } from '../helpers/ca-metrics.js';

const TD = TrustDomain.parse('example.org');
const K8S_ISSUER = 'https://kubernetes.default.svc.cluster.local';
const NOW_S = () => Math.floor(Date.now() / 1000);

type Signer = { key: CryptoKey; alg: 'RS256' | 'ES256'; kid: string };
let rsa: Signer;
let ec: Signer;
/** Same kid as `rsa` but a key the cluster never published. */
let impostor: Signer;
let dir: string;
let bundlePem: string;
let server: CaServer;
let plain: CaServer;
let metrics: Metrics;
let plainMetrics: Metrics;

beforeAll(async () => {
  const ca = await makeCaDir();
  dir = ca.dir;
  bundlePem = (await loadCaMaterial(dir)).bundle.toPem();
  const rsaPair = await generateJoseKeyPair('RS256');
  const ecPair = await generateJoseKeyPair('ES256');
  rsa = { key: rsaPair.privateKey, alg: 'RS256', kid: 'rsa-1' };
  ec = { key: ecPair.privateKey, alg: 'ES256', kid: 'ec-1' };
  impostor = { key: (await generateJoseKeyPair('RS256')).privateKey, alg: 'RS256', kid: 'rsa-1' };
  const jwks = {
    keys: [
      { ...(await exportJWK(rsaPair.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
      { ...(await exportJWK(ecPair.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' },
    ],
  };
  const jwksFile = join(dir, '..', 'cluster-jwks.json');
  writeFileSync(jwksFile, JSON.stringify(jwks));
  metrics = new Metrics();
  plainMetrics = new Metrics();
  server = await startCaServer({
    dir,
    listen: '127.0.0.1:0',
    svidTtlMs: 10 * 60_000,
    kubernetes: { issuer: K8S_ISSUER, jwks: jwksFile },
    logger: silentLogger(),
    metrics,
  });
  plain = await startCaServer({
    dir,
    listen: '127.0.0.1:0',
    svidTtlMs: 10 * 60_000,
    logger: silentLogger(),
    metrics: plainMetrics,
  });
  return async () => {
    await Promise.all([server.close(), plain.close()]);
    ca.cleanup();
  };
});

/** A token shaped like kubelet's projected token for pod `web-0` of service account `ns/sa`. */
function projectedClaims(ns = 'shop', sa = 'web'): JWTPayload {
  const now = NOW_S();
  return {
    iss: K8S_ISSUER,
    aud: ['meshauth'],
    exp: now + 3600,
    iat: now,
    nbf: now,
    sub: `system:serviceaccount:${ns}:${sa}`,
    'kubernetes.io': {
      namespace: ns,
      serviceaccount: { name: sa, uid: '0b7c7d1e-5c4a-4a7e-9b8e-2f1f1c2d3e4f' },
      pod: { name: `${sa}-0`, uid: '7e1c9a2b-3d4e-4f5a-8b6c-1d2e3f4a5b6c' },
    },
  };
}

async function sign(claims: JWTPayload, signer: Signer = rsa): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: signer.alg, kid: signer.kid }).sign(signer.key);
}

async function requestWith(token: string, target: CaServer = server) {
  const keys = await generateKeyPair('p256');
  return caClient.requestSvid(
    { caUrl: target.url, bundlePem, trustDomain: TD },
    { csrPem: await createCsrPem(keys), token },
  );
}

const rejected = (reason: string, from: Metrics = metrics): Promise<number> => caRejections(from, reason);

function leafId(certChainPem: readonly string[]): string | undefined {
  const leaf = parseCertificatesPem(certChainPem[0] ?? '')[0];
  return leaf === undefined ? undefined : uriSans(leaf)[0];
}

describe('POST /v1/svid with a Kubernetes service-account token', () => {
  it.each([
    ['ok/RS256 projected token → SVID for ns/shop/sa/web', 'shop', 'web', () => rsa],
    ['ok/ES256 projected token → SVID for ns/pay/sa/api', 'pay', 'api', () => ec],
  ] as const)('%s', async (_name, ns, sa, signer) => {
    const { values: before } = await metrics.caSvidsIssued.get();
    const count = before.find((v) => v.labels.method === 'k8s_sa_token')?.value ?? 0;
    const response = await requestWith(await sign(projectedClaims(ns, sa), signer()));
    expect(leafId(response.certChainPem)).toBe(`spiffe://example.org/ns/${ns}/sa/${sa}`);
    const { values: after } = await metrics.caSvidsIssued.get();
    expect(after.find((v) => v.labels.method === 'k8s_sa_token')?.value).toBe(count + 1);
  });

  it('ok/the same token works again (reusable, unlike a join token)', async () => {
    const token = await sign(projectedClaims('shop', 'cart'));
    for (let i = 0; i < 3; i++) {
      expect(leafId((await requestWith(token)).certChainPem)).toBe('spiffe://example.org/ns/shop/sa/cart');
    }
  });

  const { exp: _exp, ...withoutExp } = projectedClaims();
  const { aud: _aud, ...withoutAud } = projectedClaims();
  const { 'kubernetes.io': _k8s, ...withoutK8s } = projectedClaims();
  const cases: [string, () => Promise<string>, string][] = [
    [
      'fail/wrong audience (the API server default)',
      () => sign({ ...projectedClaims(), aud: ['https://kubernetes.default.svc.cluster.local'] }),
      'sa_token_audience',
    ],
    ['fail/no aud', () => sign(withoutAud), 'sa_token_audience'],
    ['fail/no exp', () => sign(withoutExp), 'sa_token_unbound'],
    ['fail/JWT-shaped garbage', async () => 'eyJhbGciOiJSUzI1NiJ9.e30.AAAA', 'sa_token_invalid'],
    ['fail/no kubernetes.io claim', () => sign(withoutK8s), 'sa_token_unbound'],
    [
      'fail/legacy secret-based token (flat claims, no aud, no exp)',
      () =>
        sign({
          iss: 'kubernetes/serviceaccount',
          sub: 'system:serviceaccount:shop:web',
          'kubernetes.io/serviceaccount/namespace': 'shop',
          'kubernetes.io/serviceaccount/service-account.name': 'web',
        }),
      'sa_token_unbound',
    ],
    [
      'fail/wrong issuer (another cluster)',
      () => sign({ ...projectedClaims(), iss: 'https://other.cluster' }),
      'sa_token_issuer',
    ],
    [
      'fail/expired',
      () => sign({ ...projectedClaims(), iat: NOW_S() - 7200, nbf: NOW_S() - 7200, exp: NOW_S() - 3600 }),
      'sa_token_expired',
    ],
    [
      // The API server's own validator refuses it too ("issued in the future"); exp alone does not bound it.
      'fail/issued an hour in the future (iat ahead of the clock)',
      () => sign({ ...projectedClaims(), iat: NOW_S() + 3600, exp: NOW_S() + 7200 }),
      'sa_token_invalid',
    ],
    [
      'fail/HS256 (a MAC, never accepted)',
      () =>
        new SignJWT(projectedClaims())
          .setProtectedHeader({ alg: 'HS256', kid: 'rsa-1' })
          .sign(new TextEncoder().encode('k'.repeat(32))),
      'sa_token_invalid',
    ],
    ['fail/signed by a key the cluster never published', () => sign(projectedClaims(), impostor), 'sa_token_invalid'],
    [
      'fail/sub disagrees with kubernetes.io',
      () => sign({ ...projectedClaims('shop', 'web'), sub: 'system:serviceaccount:kube-system:admin' }),
      'sa_token_invalid',
    ],
    [
      'fail/namespace that is not a Kubernetes name',
      () =>
        sign({
          ...projectedClaims(),
          sub: 'system:serviceaccount:..:web',
          'kubernetes.io': { namespace: '..', serviceaccount: { name: 'web' } },
        }),
      'sa_token_invalid',
    ],
  ];
  const CODES: Record<string, string> = {
    sa_token_audience: 'MESHAUTH_ERR_CA_SA_TOKEN_AUDIENCE',
    sa_token_expired: 'MESHAUTH_ERR_CA_SA_TOKEN_EXPIRED',
    sa_token_issuer: 'MESHAUTH_ERR_CA_SA_TOKEN_ISSUER',
  };
  it.each(cases)('%s → 401', async (_name, make, reason) => {
    const token = await make();
    const before = await rejected(reason);
    const error = await requestWith(token).catch((e: unknown) => e as MeshauthError);
    expect((error as MeshauthError).code).toBe(CODES[reason] ?? 'MESHAUTH_ERR_CA_UNAUTHENTICATED');
    expect(caClient.caStatusOf(error)).toBe(401);
    expect(await rejected(reason)).toBe(before + 1);
  });

  it('fail/without --k8s-issuer a service-account token is an unknown token → 401', async () => {
    const before = await rejected('token_unknown', plainMetrics);
    const error = await requestWith(await sign(projectedClaims()), plain).catch((e: unknown) => e as MeshauthError);
    expect((error as MeshauthError).code).toBe('MESHAUTH_ERR_CA_UNAUTHENTICATED');
    expect(caClient.caStatusOf(error)).toBe(401);
    expect(await rejected('token_unknown', plainMetrics)).toBe(before + 1);
  });
});

describe('--k8s-jwks as a URL', () => {
  it('ok/keys fetched from the JWKS URL (127.0.0.1) verify the token', async () => {
    const pair = await generateJoseKeyPair('ES256');
    const body = JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'url-1', alg: 'ES256' }] });
    let fetches = 0;
    const jwksServer: Server = createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
    const { port } = jwksServer.address() as { port: number };
    const fromUrl = await startCaServer({
      dir,
      listen: '127.0.0.1:0',
      svidTtlMs: 10 * 60_000,
      kubernetes: { issuer: K8S_ISSUER, jwks: `http://127.0.0.1:${port}/openid/v1/jwks`, audience: 'mesh-ca' },
      logger: silentLogger(),
      metrics: new Metrics(),
    });
    try {
      const signer: Signer = { key: pair.privateKey, alg: 'ES256', kid: 'url-1' };
      const token = await sign({ ...projectedClaims('ops', 'runner'), aud: ['mesh-ca'] }, signer);
      expect(leafId((await requestWith(token, fromUrl)).certChainPem)).toBe('spiffe://example.org/ns/ops/sa/runner');
      expect(leafId((await requestWith(token, fromUrl)).certChainPem)).toBe('spiffe://example.org/ns/ops/sa/runner');
      expect(fetches).toBeGreaterThanOrEqual(1);
      expect(fetches).toBeLessThanOrEqual(2); // cached: the start-up fetch and at most one on-demand fetch
      // --k8s-audience replaces the default: a token for `meshauth` is now someone else's.
      const error = await requestWith(await sign(projectedClaims('ops', 'runner'), signer), fromUrl).catch(
        (e: unknown) => e as MeshauthError,
      );
      expect((error as MeshauthError).code).toBe('MESHAUTH_ERR_CA_SA_TOKEN_AUDIENCE');
    } finally {
      await fromUrl.close();
      await new Promise<void>((resolve) => jwksServer.close(() => resolve()));
    }
  });
});

describe('--k8s-jwks as a file', () => {
  it('ok/the file is reloaded when it changes: a key rotated in verifies without a restart', async () => {
    const file = join(dir, '..', 'rotating-jwks.json');
    const first = await generateJoseKeyPair('ES256');
    const second = await generateJoseKeyPair('ES256');
    const publish = async (...pairs: [Awaited<ReturnType<typeof generateJoseKeyPair>>, string][]) =>
      writeFileSync(
        file,
        JSON.stringify({
          keys: await Promise.all(
            pairs.map(async ([pair, kid]) => ({ ...(await exportJWK(pair.publicKey)), kid, alg: 'ES256' })),
          ),
        }),
      );
    await publish([first, 'k-1']);
    const reloading = await startCaServer({
      dir,
      listen: '127.0.0.1:0',
      svidTtlMs: 10 * 60_000,
      kubernetes: { issuer: K8S_ISSUER, jwks: file },
      logger: silentLogger(),
      metrics: new Metrics(),
    });
    try {
      const oldToken = await sign(projectedClaims('ops', 'a'), { key: first.privateKey, alg: 'ES256', kid: 'k-1' });
      const newToken = await sign(projectedClaims('ops', 'b'), { key: second.privateKey, alg: 'ES256', kid: 'k-2' });
      expect(leafId((await requestWith(oldToken, reloading)).certChainPem)).toBe('spiffe://example.org/ns/ops/sa/a');
      const refused = await requestWith(newToken, reloading).catch((e: unknown) => e as MeshauthError);
      expect((refused as MeshauthError).code).toBe('MESHAUTH_ERR_CA_UNAUTHENTICATED');
      await publish([first, 'k-1'], [second, 'k-2']);
      expect(leafId((await requestWith(newToken, reloading)).certChainPem)).toBe('spiffe://example.org/ns/ops/sa/b');
      // The old key leaves the file: its tokens stop verifying.
      await publish([second, 'k-2']);
      const gone = await requestWith(oldToken, reloading).catch((e: unknown) => e as MeshauthError);
      expect((gone as MeshauthError).code).toBe('MESHAUTH_ERR_CA_UNAUTHENTICATED');
      // A broken write keeps the keys loaded last.
      writeFileSync(file, '{"keys": [');
      expect(leafId((await requestWith(newToken, reloading)).certChainPem)).toBe('spiffe://example.org/ns/ops/sa/b');
    } finally {
      await reloading.close();
    }
  });
});
