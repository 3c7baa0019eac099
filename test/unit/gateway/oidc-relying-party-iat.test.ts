// An ID token's `iat` against the gateway's clock: openid-client checks its exp and nbf with a 30 s tolerance but
// iat only for its type, so the relying party refuses one dated further ahead than that same tolerance.
import { describe, expect, it } from 'vitest';
import { issuedAhead } from '../../../src/gateway/oidc-relying-party.js';

const NOW = 1_700_000_000;
const DAY = 24 * 60 * 60;

describe('issuedAhead', () => {
  it.each([
    ['ok/issued now', { iat: NOW }, false],
    ['ok/issued an hour ago', { iat: NOW - 3600 }, false],
    ['ok/issued 30 s ahead (the tolerance)', { iat: NOW + 30 }, false],
    ['ok/no iat (openid-client requires it; not this check)', {}, false],
    ['fail/issued 31 s ahead', { iat: NOW + 31 }, true],
    ['fail/issued one day ahead, valid for ten years', { iat: NOW + DAY, exp: NOW + 3650 * DAY }, true],
  ] as const)('%s', (_name, claims, ahead) => {
    expect(issuedAhead(claims, NOW)).toBe(ahead);
  });
});
