// The bound on the claims a sidecar vouches for (MAX_CLAIM_BYTES): a larger user is refused as `claims_too_large`,
// never truncated, counted once as that and not as `ok`, on a first verification and on a kept one alike. Before, the
// sidecar vouched for claims of any size: the app got identity headers past Node's 16 KiB limit and the next sidecar
// refused the passport as `too_large`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkClaimBytes, claimBytes, MAX_CLAIM_BYTES } from '../../../src/authn/claim-size.js';
import { endUserFromClaims } from '../../../src/authn/end-user.js';
import { EndUserVerifier } from '../../../src/authn/end-user-verifier.js';
import { vouchingOptions } from '../../../src/sidecar/inbound/vouch-for-user.js';
import { Metrics } from '../../../src/telemetry/index.js';
import {
  endUserTokenWith,
  type JwksFile,
  jwksFile,
  type SigningKey,
  signingKey,
  tokenRejection,
} from '../../helpers/end-user-keys.js';

const ISS = 'https://idp.test';
/** What the vouchers of a sidecar with the default `inbound.endUser.maxClaimBytes` verify with. */
const VOUCHING = vouchingOptions({ maxClaimBytes: MAX_CLAIM_BYTES });

function userWith(claims: Record<string, unknown>) {
  const user = endUserFromClaims({ sub: 'alice', iss: ISS, exp: 2_000_000_000, ...claims }, Object.keys(claims));
  if (user === undefined) throw new Error('user');
  return user;
}

describe('checkClaimBytes', () => {
  it('ok/claims of exactly the bound', () => {
    const base = claimBytes(userWith({ blob: '' }));
    const user = userWith({ blob: 'x'.repeat(MAX_CLAIM_BYTES - base) });
    expect(claimBytes(user)).toBe(MAX_CLAIM_BYTES);
    expect(() => checkClaimBytes(user, MAX_CLAIM_BYTES)).not.toThrow();
  });

  it('fail/one byte over the bound (counted in UTF-8) → MESHAUTH_ERR_TOKEN_INVALID claims_too_large', () => {
    const base = claimBytes(userWith({ blob: '' }));
    const user = userWith({ blob: `${'x'.repeat(MAX_CLAIM_BYTES - base - 1)}é` });
    expect(() => checkClaimBytes(user, MAX_CLAIM_BYTES)).toThrow(
      expect.objectContaining({ code: 'MESHAUTH_ERR_TOKEN_INVALID', reason: 'claims_too_large', status: 401 }),
    );
  });
});

describe('EndUserVerifier.verify with maxClaimBytes (the sidecar vouchers: vouchingOptions)', () => {
  let jwks: JwksFile;
  let key: SigningKey;
  let metrics: Metrics;
  let verifier: EndUserVerifier;

  beforeAll(async () => {
    key = await signingKey('k1');
    jwks = jwksFile('claim-size-', key);
    metrics = new Metrics();
    verifier = new EndUserVerifier({
      config: {
        required: true,
        issuers: [{ issuer: ISS, audiences: ['api'], algorithms: ['ES256'], jwksUri: jwks.uri }],
        vouchers: [],
        claims: [],
      },
      metrics,
    });
  });

  afterAll(async () => {
    await verifier?.close();
    jwks?.remove();
  });

  /** `groups` copies into every user's claims (a policy claim), configured or not. */
  function token(groups: number): Promise<string> {
    const names = Array.from({ length: groups }, (_, i) => `group-${String(i).padStart(30, '0')}`);
    return endUserTokenWith(key, ISS, 'api', { groups: names });
  }

  async function results(): Promise<Record<string, number>> {
    const values = (await metrics.tokenVerifications.get()).values;
    return Object.fromEntries(values.map((v) => [String(v.labels.result), v.value]));
  }

  it('ok/vouchingOptions bound the claims at the setting and mint for a passport', () => {
    expect(VOUCHING).toEqual({ forPassport: true, maxClaimBytes: MAX_CLAIM_BYTES });
  });

  it('ok/a user within the bound is verified', async () => {
    expect((await verifier.verify(await token(10), VOUCHING)).sub).toBe('alice');
  });

  it('fail/a user over the bound → claims_too_large, counted once as that, first and kept verification alike', async () => {
    const large = await token(200);
    // Without the option (the gateway bounds its own scoped users): accepted, and kept by the verifier.
    expect((await verifier.verify(large, { forPassport: true })).sub).toBe('alice');
    for (let attempt = 0; attempt < 2; attempt++) {
      const before = await results();
      expect(await tokenRejection({ verify: (t) => verifier.verify(t, VOUCHING) }, large)).toBe('claims_too_large');
      const after = await results();
      expect((after.claims_too_large ?? 0) - (before.claims_too_large ?? 0)).toBe(1);
      expect(after.ok).toBe(before.ok);
    }
  });
});
