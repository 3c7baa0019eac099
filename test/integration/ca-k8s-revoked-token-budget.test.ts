// A revoked service-account token (its pod deleted, so its TokenReview fails) replayed in a loop with
// --k8s-token-review: every request is refused 401, only the first costs an API-server call, and the per-identity
// budget its service account's live pods share is untouched. Found in review: the limit took its unit before the
// TokenReview, so the revoked token used up the budget and every live pod of the service account got 429 on
// bootstrap and on renewal (their SVIDs would then expire), and each replay cost one more review until then.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as caClient from '../../src/agent/ca-client.js';
import { TrustDomain } from '../../src/identity/index.js';
import { createCsrPem, exportPrivateKeyPem, generateKeyPair } from '../../src/pki/index.js';
import type { FakeApiServer } from '../helpers/fake-kube-apiserver.js';
import { pod } from '../helpers/projected-token.js';
import { type ReviewingCa, startReviewingCa } from '../helpers/reviewing-ca.js';
import { waitFor } from '../helpers/wait.js';

const TD = TrustDomain.parse('example.org');
const BURST = 3;
let ca: ReviewingCa;
let api: FakeApiServer;
let conn: caClient.CaConnection;

beforeAll(async () => {
  // A burst of 3, then practically nothing: a spent budget shows at once, without waiting on the clock.
  ca = await startReviewingCa(BURST);
  api = ca.api;
  conn = { caUrl: ca.server.url, bundlePem: ca.bundlePem, trustDomain: TD };
});
afterAll(async () => {
  await ca?.close();
});

const reviews = () => api.requests.filter((r) => r.path.endsWith('/tokenreviews')).length;
const outcome = (p: Promise<unknown>) =>
  p.then(
    () => 'issued',
    (error: unknown) => `HTTP ${caClient.caStatusOf(error)}`,
  );

describe('POST /v1/svid with a revoked service-account token and --k8s-token-review', () => {
  it('fail/a revoked token replayed is refused 401 after one review; live pods of its service account still get SVIDs', async () => {
    const keys = await generateKeyPair('p256');
    const csrPem = await createCsrPem(keys);
    const live = await caClient.requestSvid(conn, {
      csrPem,
      token: await api.mint({ pod: pod('shop', 'web'), audience: ['meshauth'] }),
    });

    const gone = pod('shop', 'web', 'web-deleted');
    const revoked = await api.mint({ pod: gone, audience: ['meshauth'] });
    api.livePods.delete(gone.podUid);
    const before = reviews();
    const replays: string[] = [];
    for (let i = 0; i < 3 * BURST; i++)
      replays.push(await outcome(caClient.requestSvid(conn, { csrPem, token: revoked })));
    expect(replays).toEqual(Array(3 * BURST).fill('HTTP 401'));
    expect(reviews() - before).toBe(1);

    // The budget left after the live pod's bootstrap (2 of 3) is still there: a renewal and a new pod's bootstrap.
    const renewal = await outcome(
      caClient.requestSvid(
        {
          ...conn,
          clientCertPem: live.certChainPem.join(''),
          clientKeyPem: await exportPrivateKeyPem(keys.privateKey),
        },
        { csrPem },
      ),
    );
    const sibling = await outcome(
      caClient.requestSvid(conn, {
        csrPem,
        token: await api.mint({ pod: pod('shop', 'web', 'web-new'), audience: ['meshauth'] }),
      }),
    );
    expect({ renewal, sibling }).toEqual({ renewal: 'issued', sibling: 'issued' });
  });

  it('ok/a token refused while the API server is unavailable is reviewed again once it is back (after a second)', async () => {
    const p = pod('pay', 'api');
    const token = await api.mint({ pod: p, audience: ['meshauth'] });
    const csrPem = await createCsrPem(await generateKeyPair('p256'));
    api.reviewStatusOverride = 500;
    try {
      expect(await outcome(caClient.requestSvid(conn, { csrPem, token }))).toBe('HTTP 503');
    } finally {
      api.reviewStatusOverride = undefined;
    }
    // "Unavailable" is remembered for that token for a second (token-review-memo.ts), then it is reviewed again.
    const before = reviews();
    expect(
      await waitFor(
        'the token issued once reviewed again',
        async () => (await outcome(caClient.requestSvid(conn, { csrPem, token }))) === 'issued',
        5_000,
        200,
      ),
    ).toBe(true);
    expect(reviews()).toBe(before + 1);
  });
});
