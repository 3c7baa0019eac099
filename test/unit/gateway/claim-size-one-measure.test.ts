// The gateway's checkClaimSize measures a user's claims with the sidecar's claimBytes (authn/claim-size.ts): one
// measure, two callers, each user object serialised once. Review follow-up: the gateway serialised the claims again
// on every check (JSON.stringify of up to 8 KiB), beside the same measure in the sidecar's vouchers.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { claimBytes } from '../../../src/authn/claim-size.js';
import { endUserFromClaims } from '../../../src/authn/end-user.js';
import { checkClaimSize } from '../../../src/gateway/edge-rule.js';

function user(blob: string) {
  const made = endUserFromClaims({ sub: 'alice', iss: 'https://idp', exp: 1, blob }, ['blob']);
  if (made === undefined) throw new Error('user');
  return made;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('checkClaimSize: one measure with claimBytes', () => {
  it('ok/a user already measured is not serialised again', () => {
    const alice = user('x'.repeat(100));
    const size = claimBytes(alice);
    const stringify = vi.spyOn(JSON, 'stringify');
    expect(() => checkClaimSize(alice, size, 'MESHAUTH_ERR_TOKEN_INVALID')).not.toThrow();
    expect(stringify).not.toHaveBeenCalled();
  });

  it('fail/one byte past the bound, as claimBytes counts it (UTF-8) → claims_too_large with the size', () => {
    const alice = user(`${'x'.repeat(100)}é`);
    const size = claimBytes(alice);
    expect(() => checkClaimSize(alice, size - 1, 'MESHAUTH_ERR_LOGIN_FAILED')).toThrow(
      expect.objectContaining({
        code: 'MESHAUTH_ERR_LOGIN_FAILED',
        reason: 'claims_too_large',
        message: `end-user claims are ${size} bytes; limits.maxClaimBytes is ${size - 1}`,
      }),
    );
  });
});
