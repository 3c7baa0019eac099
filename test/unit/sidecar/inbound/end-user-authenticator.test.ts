// The inbound end-user hook on a request whose user a passport proves, under each combination of
// `inbound.endUser.required` and `forwardOriginalToken`. Before, with both set, an `Authorization: Basic …` meant for
// the app was refused 401 MESHAUTH_ERR_TOKEN_MISSING ("send a token") although the passport proved the user: the
// forwarded-token check applied `required`, which is about a request with no end user at all.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_CLAIM_BYTES } from '../../../../src/authn/claim-size.js';
import { endUserFromClaims } from '../../../../src/authn/end-user.js';
import {
  leafKeyOf,
  mintOriginPassport,
  ownOrigin,
  PASSPORT_HEADER,
  thumbprintOfDer,
  wrapPassport,
} from '../../../../src/authn/passport/index.js';
import { MAX_TOKEN_LIFETIME_SECONDS } from '../../../../src/authn/token-lifetime.js';
import type { EndUserSettings } from '../../../../src/config/index.js';
import { SpiffeId } from '../../../../src/identity/index.js';
import { endUserAuthenticator } from '../../../../src/sidecar/inbound/end-user-authenticator.js';
import type { EndUserOutcome, InboundRequestView } from '../../../../src/sidecar/inbound/inbound-hooks.js';
import { withEndUserHookOptions } from '../../../helpers/end-user-hook.js';
import { endUserToken, type JwksFile, jwksFile, type SigningKey, signingKey } from '../../../helpers/end-user-keys.js';
import { TestCa, type TestSvid } from '../../../helpers/test-ca.js';

const ISS = 'https://idp.test';
const BASIC = 'Basic YWxpY2U6czNjcjN0';

let ca: TestCa;
let gateway: TestSvid;
let orders: TestSvid;
let key: SigningKey;
let jwks: JwksFile;

beforeAll(async () => {
  ca = await TestCa.create('example.org');
  gateway = await ca.issue({ id: ca.idFor('/ns/edge/sa/gateway') });
  orders = await ca.issue({ id: ca.idFor('/ns/shop/sa/orders') });
  key = await signingKey('k1');
  jwks = jwksFile('end-user-authenticator-', key);
});

afterAll(() => jwks?.remove());

/** The hook of `orders`' sidecar (gateway as voucher) handling one request from the gateway with `headers`. */
async function handle(
  required: boolean,
  forwardOriginalToken: boolean,
  headers: Record<string, string>,
): Promise<EndUserOutcome> {
  const issuers = [{ issuer: ISS, audiences: ['api'], algorithms: ['ES256'], jwksUri: jwks.uri }];
  const settings: EndUserSettings = {
    required,
    issuers,
    vouchers: [gateway.id],
    claims: [],
    forwardOriginalToken,
    maxClaimBytes: MAX_CLAIM_BYTES,
    maxTokenLifetimeSeconds: MAX_TOKEN_LIFETIME_SECONDS,
  };
  return withEndUserHookOptions(ca, orders, settings, (options) => {
    const rawHeaders = Object.entries(headers).flat();
    const view = {
      peer: {
        id: SpiffeId.parse(gateway.id),
        publicKey: leafKeyOf(Buffer.from(gateway.leaf.rawData).toString('base64')).key,
        thumbprint: thumbprintOfDer(new Uint8Array(gateway.leaf.rawData)),
      },
      headers,
      rawHeaders,
    } as unknown as InboundRequestView;
    return endUserAuthenticator(options)(view);
  });
}

/** What the gateway's sidecar sends for alice: link (gateway → orders) and origin (gateway). */
function alicePassport(): string {
  const now = new Date();
  const user = endUserFromClaims({ sub: 'alice', iss: ISS, exp: Math.floor(now.getTime() / 1000) + 600 }, []);
  if (user === undefined) throw new Error('user');
  const origin = ownOrigin(
    mintOriginPassport({ svid: gateway.svid, now, user }),
    SpiffeId.parse(gateway.id),
    user.expiresAt,
  );
  return wrapPassport({ svid: gateway.svid, audience: SpiffeId.parse(orders.id), now, received: origin });
}

const COMBINATIONS = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
] as const;

describe('endUserAuthenticator: a passport request with an Authorization header of another scheme', () => {
  it.each(COMBINATIONS)(
    'ok/required=%s forwardOriginalToken=%s: Basic beside a valid passport passes, the header dropped',
    async (required, forward) => {
      const outcome = await handle(required, forward, { [PASSPORT_HEADER]: alicePassport(), authorization: BASIC });
      expect(outcome.reject).toBeUndefined();
      expect(outcome.user).toMatchObject({ sub: 'alice', iss: ISS });
      expect(outcome.dropAuthorization).toBe(true);
    },
  );

  it("ok/required and forwardOriginalToken: alice's own token beside her passport is forwarded", async () => {
    const token = await endUserToken(key, ISS, 'api', 'alice');
    const outcome = await handle(true, true, { [PASSPORT_HEADER]: alicePassport(), authorization: `Bearer ${token}` });
    expect(outcome.reject).toBeUndefined();
    expect(outcome.dropAuthorization).toBe(false);
  });

  it("fail/required and forwardOriginalToken: bob's token beside alice's passport → 401 not_passport_user", async () => {
    const token = await endUserToken(key, ISS, 'api', 'bob');
    const outcome = await handle(true, true, { [PASSPORT_HEADER]: alicePassport(), authorization: `Bearer ${token}` });
    expect(outcome.reject).toMatchObject({ code: 'MESHAUTH_ERR_TOKEN_INVALID', reason: 'not_passport_user' });
  });

  it('fail/required and forwardOriginalToken: a JWT under another scheme beside a passport → 400 scheme', async () => {
    const token = await endUserToken(key, ISS, 'api', 'alice');
    const outcome = await handle(true, true, { [PASSPORT_HEADER]: alicePassport(), authorization: `Token ${token}` });
    expect(outcome.reject).toMatchObject({ code: 'MESHAUTH_ERR_TOKEN_REQUEST_MALFORMED', reason: 'scheme' });
  });
});
