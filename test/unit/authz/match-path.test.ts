import { describe, expect, it } from 'vitest';
import {
  compilePathMatcher,
  cutAtEscapedDelimiter,
  pathMatches,
  pathPatternError,
} from '../../../src/authz/policy/match-path.js';

const cases: ReadonlyArray<readonly [name: string, pattern: string, path: string, expected: boolean]> = [
  ['ok/exact', '/orders', '/orders', true],
  ['fail/exact-no-trailing-slash-twin', '/orders', '/orders/', false],
  ['fail/exact-no-prefix', '/orders', '/orders/1', false],
  ['fail/exact-case-sensitive', '/admin', '/ADMIN', false],
  ['ok/prefix-child', '/orders/*', '/orders/1', true],
  ['ok/prefix-deep', '/orders/*', '/orders/1/items/2', true],
  ['ok/prefix-trailing-slash', '/orders/*', '/orders/', true],
  ['fail/prefix-not-itself', '/orders/*', '/orders', false],
  ['fail/prefix-not-sibling', '/orders/*', '/orders-archive/1', false],
  ['ok/root-prefix-everything', '/*', '/', true],
  ['ok/root-prefix-deep', '/*', '/a/b', true],
  ['ok/param', '/users/{id}/profile', '/users/42/profile', true],
  ['fail/param-empty-segment', '/users/{id}/profile', '/users//profile', false],
  ['fail/param-two-segments', '/users/{id}/profile', '/users/4/2/profile', false],
  ['fail/param-trailing-slash', '/users/{id}/profile', '/users/42/profile/', false],
  ['fail/param-missing-tail', '/users/{id}/profile', '/users/42', false],
  ['fail/param-literal-mismatch', '/users/{id}/profile', '/users/42/profiles', false],
  ['ok/param-last', '/users/{id}', '/users/42', true],
  ['fail/param-last-missing', '/users/{id}', '/users/', false],
  ['ok/param-open', '/users/{id}/*', '/users/42/x/y', true],
  ['ok/param-open-trailing-slash', '/users/{id}/*', '/users/42/', true],
  ['fail/param-open-not-itself', '/users/{id}/*', '/users/42', false],
  ['ok/two-params', '/a/{x}/b/{y}', '/a/1/b/2', true],
];

describe('path patterns', () => {
  it.each(cases)('%s: %s vs %s', (_name, pattern, path, expected) => {
    expect(pathPatternError(pattern)).toBeUndefined();
    expect(pathMatches(compilePathMatcher([pattern]), path)).toBe(expected);
  });

  it('ok/list is OR', () => {
    const m = compilePathMatcher(['/a', '/b/*', '/c/{id}']);
    expect(['/a', '/b/x', '/c/1'].map((p) => pathMatches(m, p))).toEqual([true, true, true]);
    expect(pathMatches(m, '/d')).toBe(false);
  });

  it.each([
    ['fail/relative', 'orders'],
    ['fail/query', '/orders?x=1'],
    ['fail/inner-star', '/orders/*/items'],
    ['fail/glob-in-segment', '/orders*'],
    ['fail/double-star', '/orders/**'],
    ['fail/partial-param', '/files/{name}.txt'],
    ['fail/not-normalized-dots', '/a/../b'],
    ['fail/not-normalized-slashes', '//admin'],
    ['fail/encoded-unreserved', '/%41dmin'],
    ['fail/encoded-slash', '/a%2Fb'],
    ['fail/semicolon', '/admin;x'],
  ])('%s: %s is refused', (_name, pattern) => {
    expect(pathPatternError(pattern)).toEqual(expect.any(String));
  });
});

// What an app that decodes before splitting off its query routes (deny rules read this too, see decide.test.ts).
describe('cutAtEscapedDelimiter', () => {
  it.each([
    ['ok/no-escape', '/admin', undefined],
    ['ok/other-escapes-only', '/a%20b/%252F', undefined],
    ['fail/escaped-question-mark', '/admin%3F', '/admin'],
    ['fail/escaped-question-mark-then-more', '/admin%3Fanything/goes', '/admin'],
    ['fail/escaped-hash', '/admin%23', '/admin'],
    ['fail/the-first-of-both', '/a%23b%3Fc', '/a'],
    ['fail/the-first-of-both-other-order', '/a%3Fb%23c', '/a'],
    ['fail/after-a-slash', '/admin/%3F', '/admin/'],
    ['fail/escaped-space-before-it-dropped-as-trim-does', '/admin%20%C2%A0%23', '/admin'],
    ['ok/escaped-percent-is-no-delimiter', '/admin%253F', undefined],
    ['fail/at-the-root', '/%3Fadmin', '/'],
  ])('%s: %s', (_name, form, cut) => {
    expect(cutAtEscapedDelimiter(form)).toBe(cut);
  });

  it('fail/patterns ending in escaped white space are refused: they normalize to a refused path', () => {
    expect(pathPatternError('/admin%20')).toEqual(expect.any(String));
    expect(pathPatternError('/public/%252e%252e/x')).toEqual(expect.any(String));
  });
});
