// A service-account token is taken only as the API server writes it: canonical base64url in every segment. Found in
// review: the last character of a segment carries bits no decoder reads, so one token had up to 16 spellings that
// all verified, and each was another token to the TokenReview memo and the review in progress (a revoked token
// replayed in its 16 spellings cost 16 reviews instead of one).
import { describe, expect, it } from 'vitest';
import { isCanonicalJwt } from '../../../src/ca/kubernetes-token.js';

const b64u = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const HEADER = b64u({ alg: 'RS256', kid: 'k1' });
const PAYLOAD = b64u({ iss: 'https://kubernetes.default.svc', sub: 'system:serviceaccount:shop:web' });
// 32 bytes: 43 characters, the last of which carries two bits no decoder reads.
const SIGNATURE = Buffer.alloc(32, 7).toString('base64url');

/** The other spellings of `segment`: its last character replaced by ones that decode to the same bytes. */
function otherSpellings(segment: string): string[] {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const bytes = Buffer.from(segment, 'base64url');
  return [...alphabet]
    .map((c) => segment.slice(0, -1) + c)
    .filter((spelling) => spelling !== segment && Buffer.from(spelling, 'base64url').equals(bytes));
}

describe('isCanonicalJwt', () => {
  it('ok/a token as base64url writes it', () => {
    expect(isCanonicalJwt(`${HEADER}.${PAYLOAD}.${SIGNATURE}`)).toBe(true);
  });

  it('fail/every other spelling of a segment is refused', () => {
    const spellings = otherSpellings(SIGNATURE);
    expect(spellings.length).toBeGreaterThan(0);
    for (const signature of spellings) expect(isCanonicalJwt(`${HEADER}.${PAYLOAD}.${signature}`)).toBe(false);
    for (const payload of otherSpellings(PAYLOAD))
      expect(isCanonicalJwt(`${HEADER}.${payload}.${SIGNATURE}`)).toBe(false);
  });
});
