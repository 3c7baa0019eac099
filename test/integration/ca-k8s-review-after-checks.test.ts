// A service-account token's TokenReview comes after the cheap refusals: the per-identity limit and the identity the
// request asks for. Found in review: the review ran first, so a pod replaying its token in a loop was refused its
// SVIDs with 429 but cost the CA one API-server call per request (whose rate limits then throttled every other pod's
// bootstrap), and an `id` mismatch cost one too.
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as caClient from '../../src/agent/ca-client.js';
import type { CaServer } from '../../src/ca/index.js';
import { TrustDomain } from '../../src/identity/index.js';
import { createCsrPem, generateKeyPair } from '../../src/pki/index.js';
import type { FakeApiServer } from '../helpers/fake-kube-apiserver.js';
import { pod } from '../helpers/projected-token.js';
import { type ReviewingCa, startReviewingCa } from '../helpers/reviewing-ca.js';

const TD = TrustDomain.parse('example.org');
const BURST = 3;
let ca: ReviewingCa;
let api: FakeApiServer;
let server: CaServer;
let bundlePem: string;
let csrPem: string;
let anonymous: Agent;

beforeAll(async () => {
  // A burst of 3, then practically nothing: the refusals come at once, without waiting on the clock.
  ca = await startReviewingCa(BURST);
  ({ api, server, bundlePem } = ca);
  csrPem = await createCsrPem(await generateKeyPair('p256'));
  anonymous = new Agent({ connect: { ca: bundlePem } });
});
afterAll(async () => {
  await anonymous?.close();
  await ca?.close();
});

const reviews = () => api.requests.filter((r) => r.path.endsWith('/tokenreviews')).length;

async function bootstrap(token: string): Promise<string> {
  return caClient.requestSvid({ caUrl: server.url, bundlePem, trustDomain: TD }, { csrPem, token }).then(
    () => 'issued',
    (error: unknown) => `HTTP ${caClient.caStatusOf(error)}`,
  );
}

/** A bootstrap naming the SPIFFE ID it expects (the agent's client never sends one). */
async function bootstrapAsking(token: string, id: string): Promise<{ status: number; code: unknown }> {
  const response = await request(`${server.url}/v1/svid`, {
    method: 'POST',
    dispatcher: anonymous,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ csr: csrPem, token, id }),
  });
  return { status: response.statusCode, code: ((await response.body.json()) as { code?: unknown }).code };
}

describe('POST /v1/svid with a service-account token and --k8s-token-review', () => {
  it('fail/a token replayed past the per-identity limit is refused with 429 before its TokenReview', async () => {
    const p = pod('shop', 'web');
    const token = await api.mint({ pod: p, audience: ['meshauth'] });
    const before = reviews();
    const outcomes: string[] = [];
    for (let i = 0; i < 10; i++) outcomes.push(await bootstrap(token));
    expect(outcomes.filter((o) => o === 'issued')).toHaveLength(BURST);
    expect(outcomes.filter((o) => o === 'HTTP 429')).toHaveLength(10 - BURST);
    expect(reviews() - before).toBe(BURST);
  });

  it('fail/an id the token does not stand for is refused with 403 before its TokenReview', async () => {
    const p = pod('pay', 'api');
    const token = await api.mint({ pod: p, audience: ['meshauth'] });
    const before = reviews();
    expect(await bootstrapAsking(token, 'spiffe://example.org/ns/shop/sa/web')).toEqual({
      status: 403,
      code: 'MESHAUTH_ERR_CA_IDENTITY_MISMATCH',
    });
    expect(reviews() - before).toBe(0);
  });

  it('fail/a deleted pod’s token is still refused by its TokenReview', async () => {
    const p = pod('shop', 'gone');
    const token = await api.mint({ pod: p, audience: ['meshauth'] });
    api.livePods.delete(p.podUid);
    const before = reviews();
    expect(await bootstrap(token)).toBe('HTTP 401');
    expect(reviews() - before).toBe(1);
  });
});
