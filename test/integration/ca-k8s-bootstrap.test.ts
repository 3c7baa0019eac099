// Service-account bootstrap against a stand-in API server over real HTTPS (test/helpers/fake-kube-apiserver.ts):
// the CA fetches the cluster JWKS with the cluster CA and its own bearer token, verifies tokens laid out exactly like
// kubelet's projected tokens, and asks TokenReview about each — so a deleted pod's token stops working at once.
// Each refusal: its code, HTTP status, one metric increment, one log line; the CA stays up.
import { Agent, request as undiciRequest } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as caClient from '../../src/agent/ca-client.js';
import { type CaServer, type CaServerOptions, loadCaMaterial, startCaServer } from '../../src/ca/index.js';
import type { MeshauthError } from '../../src/errors/index.js';
import { TrustDomain } from '../../src/identity/index.js';
import { createCsrPem, generateKeyPair, parseCertificatesPem, uriSans } from '../../src/pki/index.js';
import { Metrics } from '../../src/telemetry/index.js';
import { makeCaDir } from '../helpers/ca-dir.js';
import { caRejections } from '../helpers/ca-metrics.js';
import { type FakeApiServer, reviewingCaOptions, startFakeApiServer } from '../helpers/fake-kube-apiserver.js';
import { logLines } from '../helpers/log-lines.js';
import { newClusterSigningKey, pod } from '../helpers/projected-token.js';

const TD = TrustDomain.parse('example.org');
const REVIEW_PATH = '/apis/authentication.k8s.io/v1/tokenreviews';
let api: FakeApiServer;
let dir: string;
let cleanup: () => void;
let bundlePem: string;
let server: CaServer;
const metrics = new Metrics();
const log = logLines();

function caOptions(overrides: Partial<CaServerOptions['kubernetes']> = {}): CaServerOptions {
  return {
    dir,
    listen: '127.0.0.1:0',
    svidTtlMs: 10 * 60_000,
    kubernetes: { ...reviewingCaOptions(api), ...overrides },
    logger: log.logger,
    metrics,
  };
}

beforeAll(async () => {
  api = await startFakeApiServer();
  ({ dir, cleanup } = await makeCaDir());
  bundlePem = (await loadCaMaterial(dir)).bundle.toPem();
  server = await startCaServer(caOptions());
});
afterAll(async () => {
  await server?.close();
  await api?.close();
  cleanup?.();
});

async function bootstrap(token: string, target: CaServer = server): Promise<string | undefined> {
  const keys = await generateKeyPair('p256');
  const response = await caClient.requestSvid(
    { caUrl: target.url, bundlePem, trustDomain: TD },
    { csrPem: await createCsrPem(keys), token },
  );
  const leaf = parseCertificatesPem(response.certChainPem[0] ?? '')[0];
  return leaf === undefined ? undefined : uriSans(leaf)[0];
}

const rejectedCount = (reason: string): Promise<number> => caRejections(metrics, reason);

/** Runs `attempt`, expects the CA to refuse it with `code`/`status`, one metric increment and one log line. */
async function expectRefused(attempt: () => Promise<unknown>, code: string, status: number, reason: string) {
  const before = await rejectedCount(reason);
  const logged = log.find({ event: 'ca_request_rejected', reason, code }).length;
  const error = (await attempt().then(
    () => undefined,
    (e: unknown) => e,
  )) as MeshauthError | undefined;
  expect(error?.code).toBe(code);
  expect(caClient.caStatusOf(error)).toBe(status);
  expect(await rejectedCount(reason)).toBe(before + 1);
  expect(log.find({ event: 'ca_request_rejected', reason, code })).toHaveLength(logged + 1);
}

describe('ca serve --k8s-issuer --k8s-ca-file --k8s-token-review', () => {
  it('ok/projected token → SVID; JWKS fetched over the cluster CA, bearer sent when asked; TokenReview exact', async () => {
    const web = pod('shop', 'web');
    const token = await api.mint({ pod: web });
    expect(await bootstrap(token)).toBe('spiffe://example.org/ns/shop/sa/web');

    const jwksRequests = api.requests.filter((r) => r.path === '/openid/v1/jwks');
    expect(jwksRequests[0]?.authorization).toBeUndefined(); // anonymous first…
    expect(jwksRequests.at(-1)?.authorization).toBe('Bearer ca-token-1'); // …then its own token when refused
    const review = api.requests.filter((r) => r.path === REVIEW_PATH).at(-1);
    expect(review?.method).toBe('POST');
    expect(review?.authorization).toBe('Bearer ca-token-1');
    expect(review?.body).toEqual({
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token, audiences: ['meshauth'] },
    });
  });

  it('ok/the same token works again, also after the CA restarts (not single-use)', async () => {
    const token = await api.mint({ pod: pod('shop', 'cart') });
    expect(await bootstrap(token)).toBe('spiffe://example.org/ns/shop/sa/cart');
    expect(await bootstrap(token)).toBe('spiffe://example.org/ns/shop/sa/cart');
    await server.close();
    server = await startCaServer(caOptions());
    expect(await bootstrap(token)).toBe('spiffe://example.org/ns/shop/sa/cart');
  });

  it('ok/the CA re-reads its own token file on each use (the kubelet rotates it)', async () => {
    api.setCaToken('ca-token-2');
    try {
      const token = await api.mint({ pod: pod('shop', 'web') });
      expect(await bootstrap(token)).toBe('spiffe://example.org/ns/shop/sa/web');
      expect(api.requests.filter((r) => r.path === REVIEW_PATH).at(-1)?.authorization).toBe('Bearer ca-token-2');
    } finally {
      api.setCaToken('ca-token-1');
    }
  });

  it('ok/a cluster key rotated in is fetched on the first token that names it', async () => {
    const next = await newClusterSigningKey();
    api.keys = [next, ...api.keys];
    const token = await api.mint({ pod: pod('ops', 'runner'), key: next });
    expect(await bootstrap(token)).toBe('spiffe://example.org/ns/ops/sa/runner');
  });

  it('fail/TokenReview says no: the pod was deleted → 401 SA_TOKEN_REVIEW_DENIED at once', async () => {
    const web = pod('shop', 'web');
    const token = await api.mint({ pod: web });
    expect(await bootstrap(token)).toBe('spiffe://example.org/ns/shop/sa/web');
    api.livePods.delete(web.podUid); // `kubectl delete pod`: the token still verifies offline until exp
    await expectRefused(
      () => bootstrap(token),
      'MESHAUTH_ERR_CA_SA_TOKEN_REVIEW_DENIED',
      401,
      'sa_token_review_denied',
    );
  });

  it.each([
    [
      'fail/wrong audience (the API server default audience)',
      () => api.mint({ pod: pod('shop', 'web'), audience: ['https://kubernetes.default.svc.cluster.local'] }),
      'MESHAUTH_ERR_CA_SA_TOKEN_AUDIENCE',
      'sa_token_audience',
    ],
    [
      'fail/expired (minted 2 h ago for 1 h)',
      () => api.mint({ pod: pod('shop', 'web'), shiftSeconds: -7200, expirationSeconds: 3600 }),
      'MESHAUTH_ERR_CA_SA_TOKEN_EXPIRED',
      'sa_token_expired',
    ],
    [
      'fail/other issuer (another cluster, its own key)',
      async () =>
        api.mint({
          pod: pod('shop', 'web'),
          issuer: 'https://oidc.other-cluster.example',
          key: await newClusterSigningKey(),
        }),
      'MESHAUTH_ERR_CA_SA_TOKEN_ISSUER',
      'sa_token_issuer',
    ],
    [
      'fail/other issuer (signed by this cluster key, iss rewritten)',
      () => api.mint({ pod: pod('shop', 'web'), issuer: 'https://kubernetes.default.svc' }),
      'MESHAUTH_ERR_CA_SA_TOKEN_ISSUER',
      'sa_token_issuer',
    ],
  ])('%s → 401', async (_name, mint, code, reason) => {
    const token = await mint();
    await expectRefused(() => bootstrap(token), code, 401, reason);
  });

  it.each([
    [
      'fail/an authenticated answer without status.audiences (an authenticator that ignored spec.audiences)',
      (status: Record<string, unknown>) => {
        delete status.audiences;
      },
    ],
    [
      'fail/status.audiences without meshauth (valid for the API server only)',
      (status: Record<string, unknown>) => {
        status.audiences = ['https://kubernetes.default.svc.cluster.local'];
      },
    ],
    [
      'fail/status.audiences empty',
      (status: Record<string, unknown>) => {
        status.audiences = [];
      },
    ],
    [
      'fail/status.audiences a string, not a list',
      (status: Record<string, unknown>) => {
        status.audiences = 'meshauth';
      },
    ],
  ])(
    '%s → 401 SA_TOKEN_REVIEW_DENIED (sa_token_review_audience); signed again once the audience is confirmed',
    async (_name, edit) => {
      const token = await api.mint({ pod: pod('shop', 'web') });
      api.reviewStatusEdit = edit;
      try {
        await expectRefused(
          () => bootstrap(token),
          'MESHAUTH_ERR_CA_SA_TOKEN_REVIEW_DENIED',
          401,
          'sa_token_review_audience',
        );
      } finally {
        api.reviewStatusEdit = undefined;
      }
      expect(await bootstrap(token)).toBe('spiffe://example.org/ns/shop/sa/web');
    },
  );

  it('fail/namespace A asking for namespace B → 403 IDENTITY_MISMATCH; asking for its own ID is fine', async () => {
    const token = await api.mint({ pod: pod('shop', 'web') });
    const agent = new Agent({ connect: { ca: bundlePem } });
    const post = async (id: string) => {
      const response = await undiciRequest(`${server.url}/v1/svid`, {
        method: 'POST',
        dispatcher: agent,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ csr: await createCsrPem(await generateKeyPair()), token, id }),
      });
      return { status: response.statusCode, body: (await response.body.json()) as { code?: string } };
    };
    try {
      expect((await post('spiffe://example.org/ns/shop/sa/web')).status).toBe(200);
      const before = await rejectedCount('identity_mismatch');
      const refused = await post('spiffe://example.org/ns/pay/sa/web');
      expect(refused).toEqual({
        status: 403,
        body: expect.objectContaining({ code: 'MESHAUTH_ERR_CA_IDENTITY_MISMATCH' }),
      });
      expect(await rejectedCount('identity_mismatch')).toBe(before + 1);
    } finally {
      await agent.close();
    }
  });

  it('fail/TokenReview unavailable (API server 500) → 503, fail closed, asked once a second; back to normal when it answers', async () => {
    const token = await api.mint({ pod: pod('shop', 'web') });
    const reviews = () => api.requests.filter((r) => r.path.endsWith('/tokenreviews')).length;
    const before = reviews();
    api.reviewStatusOverride = 500;
    try {
      for (let i = 0; i < 3; i++) {
        await expectRefused(() => bootstrap(token), 'MESHAUTH_ERR_CA_UNAVAILABLE', 503, 'sa_token_review_unavailable');
      }
    } finally {
      api.reviewStatusOverride = undefined;
    }
    // The 503 is remembered for that token for a second (the API server is not asked once per request while it
    // fails); another token of the pod is reviewed at once.
    expect(reviews() - before).toBeLessThan(3);
    expect(await bootstrap(await api.mint({ pod: pod('shop', 'web') }))).toBe('spiffe://example.org/ns/shop/sa/web');
  });

  it("fail/the CA's own token is refused by the API server → 503 naming the RBAC fix", async () => {
    const token = await api.mint({ pod: pod('shop', 'web') });
    api.setCaToken('ca-token-3');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(api.tokenFile, 'stale-token\n'); // the API server wants ca-token-3, the file says otherwise
    try {
      await expectRefused(() => bootstrap(token), 'MESHAUTH_ERR_CA_UNAVAILABLE', 503, 'sa_token_review_unavailable');
      expect(
        String(log.find({ event: 'ca_request_rejected', reason: 'sa_token_review_unavailable' }).at(-1)?.msg),
      ).toMatch(/tokenreviews/);
    } finally {
      api.setCaToken('ca-token-1');
    }
  });

  it('fail/without --k8s-ca-file the API server is not trusted: no JWKS → 503 sa_jwks_unavailable', async () => {
    const { caFile: _caFile, ...withoutCa } = caOptions().kubernetes as NonNullable<CaServerOptions['kubernetes']>;
    const untrusting = await startCaServer({ ...caOptions(), kubernetes: withoutCa });
    try {
      const token = await api.mint({ pod: pod('shop', 'web') });
      await expectRefused(
        () => bootstrap(token, untrusting),
        'MESHAUTH_ERR_CA_UNAVAILABLE',
        503,
        'sa_jwks_unavailable',
      );
    } finally {
      await untrusting.close();
    }
  });
});

describe('NODE_TLS_REJECT_UNAUTHORIZED=0 in the environment', () => {
  it('fail/the untrusted API server stays untrusted: no JWKS → 503 sa_jwks_unavailable', async () => {
    const { caFile: _caFile, ...withoutCa } = caOptions().kubernetes as NonNullable<CaServerOptions['kubernetes']>;
    const previous = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    let untrusting: CaServer | undefined;
    try {
      untrusting = await startCaServer({ ...caOptions(), kubernetes: withoutCa });
      const token = await api.mint({ pod: pod('shop', 'web') });
      const target = untrusting;
      await expectRefused(() => bootstrap(token, target), 'MESHAUTH_ERR_CA_UNAVAILABLE', 503, 'sa_jwks_unavailable');
    } finally {
      if (previous === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
      else process.env.NODE_TLS_REJECT_UNAUTHORIZED = previous;
      await untrusting?.close();
    }
  });
});

describe('--k8s-issuer without --k8s-jwks: the issuer discovery document names the JWKS', () => {
  it('ok/discovered over the cluster CA with the bearer token', async () => {
    const selfIssued = await startFakeApiServer('self');
    const ca = await startCaServer({
      ...caOptions(),
      kubernetes: {
        issuer: selfIssued.issuer,
        caFile: selfIssued.caFile,
        tokenFile: selfIssued.tokenFile,
        apiServer: selfIssued.url,
      },
    });
    try {
      const token = await selfIssued.mint({ pod: pod('pay', 'api') });
      expect(await bootstrap(token, ca)).toBe('spiffe://example.org/ns/pay/sa/api');
      expect(selfIssued.requests.map((r) => r.path)).toContain('/.well-known/openid-configuration');
    } finally {
      await ca.close();
      await selfIssued.close();
    }
  });
});
