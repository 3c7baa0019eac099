import { describe, expect, it } from 'vitest';
import { compileIdMatcher, idMatches, idPatternError } from '../../../src/authz/policy/match-id.js';

describe('SPIFFE ID patterns', () => {
  it.each([
    ['ok/exact', 'spiffe://td/ns/a/sa/x', 'spiffe://td/ns/a/sa/x', true],
    ['fail/exact-other', 'spiffe://td/ns/a/sa/x', 'spiffe://td/ns/a/sa/y', false],
    ['fail/exact-is-not-prefix', 'spiffe://td/ns/a', 'spiffe://td/ns/a/sa/x', false],
    ['ok/prefix-one-segment', 'spiffe://td/ns/a/*', 'spiffe://td/ns/a/x', true],
    ['ok/prefix-many-segments', 'spiffe://td/ns/a/*', 'spiffe://td/ns/a/sa/x', true],
    ['fail/prefix-sibling-with-same-start', 'spiffe://td/ns/a/*', 'spiffe://td/ns/ab/x', false],
    ['fail/prefix-not-itself', 'spiffe://td/ns/a/*', 'spiffe://td/ns/a', false],
    ['fail/prefix-other-trust-domain', 'spiffe://td/ns/a/*', 'spiffe://td2/ns/a/x', false],
    ['fail/trust-domain-prefix-not-longer-td', 'spiffe://td/*', 'spiffe://tdx/ns/a', false],
    ['ok/trust-domain-wide', 'spiffe://td/*', 'spiffe://td/ns/a/sa/x', true],
  ])('%s', (_name, pattern, id, expected) => {
    expect(idPatternError(pattern)).toBeUndefined();
    expect(idMatches(compileIdMatcher([pattern]), id)).toBe(expected);
  });

  it.each([
    ['fail/glob-in-segment', 'spiffe://td/ns/a*'],
    ['fail/inner-star', 'spiffe://td/*/sa/x'],
    ['fail/double-star', 'spiffe://td/ns/**'],
    ['fail/bad-scheme', 'https://td/ns/a'],
    ['fail/upper-trust-domain', 'spiffe://TD/ns/a'],
    ['fail/trust-domain-id-only', 'spiffe://td'],
    ['fail/trailing-slash', 'spiffe://td/ns/a/'],
    ['fail/dot-segment', 'spiffe://td/ns/../a'],
  ])('%s', (_name, pattern) => {
    expect(idPatternError(pattern)).toEqual(expect.any(String));
  });
});
