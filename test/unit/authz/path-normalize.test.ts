// The path normalization table, written before the normalizer.
// Each `ok/…` row gives the path policy sees (and the sidecar forwards); each `fail/…` row the reject reason.
import { describe, expect, it } from 'vitest';
import { normalizePath } from '../../../src/authz/path-normalize.js';
import { isMeshauthError } from '../../../src/errors/index.js';

const ok: ReadonlyArray<readonly [name: string, input: string, path: string, query?: string]> = [
  ['ok/root', '/', '/'],
  ['ok/plain', '/orders/42', '/orders/42'],
  ['ok/dotdot-back-to-admin', '/admin/../admin', '/admin'],
  ['ok/encoded-dotdot', '/%2e%2e/admin', '/admin'],
  ['ok/encoded-dotdot-upper', '/public/%2E%2E/private', '/private'],
  ['ok/dot-then-dotdot', '/public/.././private', '/private'],
  ['ok/P01-public-dotdot-admin', '/public/../admin', '/admin'],
  ['ok/P01-dot-dotdot', '/public/./../admin', '/admin'],
  ['ok/P02-mixed-encoded-dots', '/public/%2e/%2e%2e/admin', '/admin'],
  ['ok/never-above-root', '/a/b/../../..', '/'],
  ['ok/never-above-root-then-segment', '/../../etc/passwd', '/etc/passwd'],
  ['ok/case-preserved-upper', '/ADMIN', '/ADMIN'],
  ['ok/case-preserved-mixed', '/Admin/Users', '/Admin/Users'],
  ['ok/P04-double-slash', '//admin', '/admin'],
  ['ok/P04-triple-slash', '///admin', '/admin'],
  ['ok/P04-slashes-merged-before-dots', '/public//../admin', '/admin'],
  ['ok/inner-double-slash', '/a//b///c', '/a/b/c'],
  ['ok/trailing-slash-kept', '/admin/', '/admin/'],
  ['ok/trailing-dot-segment', '/admin/.', '/admin/'],
  ['ok/trailing-dotdot-segment', '/admin/x/..', '/admin/'],
  ['ok/tilde-decoded', '/%7Euser', '/~user'],
  ['ok/tilde-decoded-lower-hex', '/%7euser', '/~user'],
  ['ok/letter-decoded', '/%41dmin', '/Admin'],
  ['ok/digit-dash-underscore-decoded', '/%30%2D%5F', '/0-_'],
  ['ok/P03-double-encoded-not-decoded-twice', '/public/%252e%252ex/admin', '/public/%252e%252ex/admin'],
  [
    'ok/triple-encoded-dots-are-no-dot-segment-after-one-decode',
    '/public/%25252e%25252e/a',
    '/public/%25252e%25252e/a',
  ],
  ['ok/double-encoded-dots-resolved-away-by-a-later-dotdot', '/public/%252e%252e/../x', '/public/x'],
  ['ok/percent25-stays-encoded', '/a%252Fb', '/a%252Fb'],
  ['ok/reserved-stays-encoded-hex-uppercased', '/a%3bb%3F', '/a%3Bb%3F'],
  ['ok/space-stays-encoded', '/a%20b', '/a%20b'],
  ['ok/space-before-a-slash-stays-encoded', '/a%20/b', '/a%20/b'],
  ['ok/space-resolved-away-is-not-trailing', '/a%20/..', '/'],
  ['ok/escaped-hash-stays-a-path-byte', '/tags/%23rust', '/tags/%23rust'],
  ['ok/escaped-question-mark-stays-a-path-byte', '/admin%3fx', '/admin%3Fx'],
  ['ok/escaped-controls-in-the-query-are-its-own', '/search?q=a%0Ab%09%20', '/search', '?q=a%0Ab%09%20'],
  ['ok/dots-before-an-escaped-query-mark-in-a-longer-name', '/a/...%3F', '/a/...%3F'],
  ['ok/sub-delims-literal', "/a!$&'()*+,=:@b", "/a!$&'()*+,=:@b"],
  ['ok/query-stripped', '/admin?x=/public', '/admin', '?x=/public'],
  ['ok/query-kept-raw', '/orders?id=%2F..%2F&a=b', '/orders', '?id=%2F..%2F&a=b'],
  ['ok/query-empty', '/orders?', '/orders', '?'],
  ['ok/query-after-dots', '/a/../b?c', '/b', '?c'],
  ['ok/dots-in-names-are-not-dot-segments', '/a/.../b/..c/.d', '/a/.../b/..c/.d'],
];

const fail: ReadonlyArray<readonly [name: string, input: string, reason: string]> = [
  ['fail/P05-encoded-slash-upper', '/admin%2F', 'encoded_slash'],
  ['fail/P05-encoded-slash-lower', '/admin%2fsettings', 'encoded_slash'],
  ['fail/P05-encoded-slash-traversal', '/public%2F..%2Fadmin', 'encoded_slash'],
  ['fail/P05-encoded-backslash', '/admin%5Cx', 'backslash'],
  ['fail/P05-encoded-backslash-lower', '/admin%5cx', 'backslash'],
  ['fail/P05-raw-backslash', '/\\admin', 'backslash'],
  ['fail/H12-raw-nul', '/admin\u0000.txt', 'nul'],
  ['fail/H12-encoded-nul', '/admin%00.txt', 'nul'],
  ['fail/invalid-percent-non-hex', '/a%G1', 'bad_percent_encoding'],
  ['fail/invalid-percent-truncated', '/a%4', 'bad_percent_encoding'],
  ['fail/invalid-percent-at-end', '/a%', 'bad_percent_encoding'],
  ['fail/P08-semicolon-param', '/admin;x', 'path_param'],
  ['fail/P08-semicolon-dotdot', '/public/..;/admin', 'path_param'],
  ['fail/P07-fragment', '/admin#x', 'fragment'],
  ['fail/P07-fragment-traversal', '/public#/../admin', 'fragment'],
  ['fail/fragment-in-query', '/a?b#c', 'fragment'],
  // An app that decodes before parsing gets these bytes raw: the URL parser drops tab and newlines anywhere and
  // trailing spaces, trim() and strip() the white space at the ends (`/ad%09min`, `/admin%20` reach /admin).
  ['fail/F1-escaped-tab-inside', '/ad%09min', 'bad_char'],
  ['fail/F1-escaped-newline-first', '/%0Aadmin', 'bad_char'],
  ['fail/F1-escaped-newline-last', '/admin%0A', 'bad_char'],
  ['fail/F1-escaped-cr-lower-hex', '/admin%0d', 'bad_char'],
  ['fail/F1-escaped-soh', '/a%01b', 'bad_char'],
  ['fail/F1-escaped-unit-separator', '/a%1Fb', 'bad_char'],
  ['fail/F1-escaped-del', '/a%7fb', 'bad_char'],
  ['fail/F1-escaped-control-before-query', '/orders%09/1?x=1', 'bad_char'],
  ['fail/F1-trailing-escaped-space', '/admin%20', 'bad_char'],
  ['fail/F1-trailing-escaped-spaces', '/admin%20%20', 'bad_char'],
  ['fail/F1-trailing-escaped-space-before-query', '/admin%20?x=1', 'bad_char'],
  ['fail/F1-trailing-escaped-space-after-slash', '/admin/%20', 'bad_char'],
  ['fail/F1-trailing-escaped-nbsp', '/admin%c2%a0', 'bad_char'],
  ['fail/F1-trailing-escaped-bom', '/admin%EF%BB%BF', 'bad_char'],
  ['fail/F1-trailing-escaped-line-separator', '/admin%E2%80%A8', 'bad_char'],
  ['fail/F1-trailing-escaped-next-line', '/admin%C2%85', 'bad_char'],
  // One more decode turns these into `..` (`%2e%2e`, `.%2e`), which the URL parser resolves.
  ['fail/F3-double-encoded-dotdot', '/public/%252e%252e/admin', 'bad_percent_encoding'],
  ['fail/F3-double-encoded-dotdot-upper', '/public/%252E%252E/admin', 'bad_percent_encoding'],
  ['fail/F3-dot-and-double-encoded-dot', '/public/.%252e/admin', 'bad_percent_encoding'],
  ['fail/F3-encoded-dot-and-double-encoded-dot', '/public/%2e%252E/admin', 'bad_percent_encoding'],
  ['fail/F3-double-encoded-dotdot-spelled-in-escapes', '/public/%25%32%65%25%32%65/admin', 'bad_percent_encoding'],
  ['fail/F3-double-encoded-dotdot-escapes-upper-e', '/public/%25%32%45.', 'bad_percent_encoding'],
  ['fail/F3-double-encoded-dot', '/public/%252e/admin', 'bad_percent_encoding'],
  ['fail/F3-double-encoded-dotdot-last', '/public/x/%252e%252e', 'bad_percent_encoding'],
  ['fail/F3-dotdot-cut-by-escaped-question-mark', '/public/..%3F', 'bad_percent_encoding'],
  ['fail/F3-dotdot-cut-by-escaped-hash', '/public/%2e%2e%23x/admin', 'bad_percent_encoding'],
  ['fail/F3-double-encoded-dotdot-cut', '/public/%252e%252e%3fx', 'bad_percent_encoding'],
  ['fail/non-ascii', '/caf\u00e9', 'bad_char'],
  ['fail/control-char', '/a\u0001b', 'bad_char'],
  ['fail/del-char', '/a\u007fb', 'bad_char'],
  ['fail/raw-space', '/a b', 'bad_char'],
  ['fail/tab-in-query', '/a?b=\tc', 'bad_char'],
  ['fail/absolute-form', 'http://other/admin', 'not_origin_form'],
  ['fail/asterisk-form', '*', 'not_origin_form'],
  ['fail/empty', '', 'not_origin_form'],
  ['fail/query-only', '?a=b', 'not_origin_form'],
];

describe('normalizePath', () => {
  it('has the table of at least 30 cases the issue asks for', () => {
    expect(ok.length + fail.length).toBeGreaterThanOrEqual(30);
  });

  it.each(ok.map(([name, input, path, query]) => [name, input, path, query ?? ''] as const))(
    '%s',
    (_n, input, path, query) => {
      const result = normalizePath(input);
      expect(result.path).toBe(path);
      expect(result.query).toBe(query);
      expect(result.target).toBe(path + query);
    },
  );

  it.each(fail)('%s', (_name, input, reason) => {
    let caught: unknown;
    try {
      normalizePath(input);
    } catch (error) {
      caught = error;
    }
    expect(isMeshauthError(caught, 'MESHAUTH_ERR_PATH_AMBIGUOUS')).toBe(true);
    expect((caught as { reason?: string }).reason).toBe(reason);
    expect((caught as { status: number }).status).toBe(400);
  });

  it('ok/idempotent: normalizing a normalized path changes nothing', () => {
    for (const [, input] of ok) {
      const once = normalizePath(input).target;
      expect(normalizePath(once).target).toBe(once);
    }
  });

  it('ok/case: /ADMIN and /admin stay distinct', () => {
    expect(normalizePath('/ADMIN').path).not.toBe(normalizePath('/admin').path);
  });
});
