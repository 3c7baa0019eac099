// Path patterns for `to.paths`. Pure; matching is case-sensitive and allocation-free.
// Forms: exact `/orders`; prefix `/orders/*` (matches `/orders/` and everything below it, never `/orders`
// itself, as in Istio); `{param}` for exactly one non-empty segment (`/users/{id}/profile`), optionally
// ending in `/*`. Patterns must already be in normalized form, or they could never match a request.
// Deny rules compare both sides in one match form (escaped or not alike), and also the request path cut at an escaped
// `?` or `#`; allow rules the normalized path as is.

import { errorMessage } from '../../errors/index.js';
import { escapedSpaceBefore, normalizePath } from '../path-normalize.js';

export interface SegmentPattern {
  /** Literal segment, or null for a `{param}` segment. */
  readonly segments: readonly (string | null)[];
  /** Ends in `/*`: the path continues with "/" and anything (possibly nothing) after it. */
  readonly open: boolean;
}

export interface PathMatcher {
  readonly exact: ReadonlySet<string>;
  /** Each ends with "/". */
  readonly prefixes: readonly string[];
  readonly patterns: readonly SegmentPattern[];
}

const PARAM = /^\{[A-Za-z_][A-Za-z0-9_]*\}$/;

export function pathPatternError(pattern: string): string | undefined {
  if (!pattern.startsWith('/')) return 'expected a path starting with "/"';
  if (pattern.includes('?')) return 'a path pattern has no query: queries are not matched';
  const open = pattern.endsWith('/*');
  const body = open ? pattern.slice(0, -1) : pattern;
  if (body.includes('*')) return '"*" is only allowed as the last segment ("/orders/*")';
  const segments = body.slice(1).split('/');
  let literal = '';
  for (const [index, segment] of segments.entries()) {
    if (segment.includes('{') || segment.includes('}')) {
      if (!PARAM.test(segment)) return 'a parameter must be a whole segment like "{id}"';
      literal += `/p${index}`;
    } else {
      literal += `/${segment}`;
    }
  }
  try {
    const normalized = normalizePath(literal).path;
    if (normalized !== literal) {
      return `expected a normalized path (no "//", ".", ".." or escaped unreserved characters): "${literal}" normalizes to "${normalized}"`;
    }
  } catch (error) {
    return errorMessage(error);
  }
  return undefined;
}

/**
 * How deny rules compare paths: every printable ASCII character in one spelling, whether it arrived escaped or not.
 * Normalization keeps `%3A` and `:` apart (only unreserved characters are decoded), but Go's ServeMux, Spring, Flask
 * and gRPC transcoding decode the path before routing: `/v1/items%3Apurge` reaches the handler of `/v1/items:purge`.
 * Kept escaped: `%` (no double decoding), `/` and `\` (refused when escaped), `?` `#` `;` (refused raw, so only their
 * escapes exist). `*` `{` `}` are pattern syntax, so their canonical spelling is the escaped one: a request's raw
 * `*` `{` `}` are escaped, a pattern's are left alone (a pattern has them only as syntax).
 */
const DECODED = 1;
const ESCAPED_IN_REQUESTS = 2;
const MATCH_FORM = new Uint8Array(0x80);
for (let c = 0x21; c < 0x7f; c++) {
  const ch = String.fromCharCode(c);
  MATCH_FORM[c] = '*{}'.includes(ch) ? ESCAPED_IN_REQUESTS : '%/\\?#;'.includes(ch) ? 0 : DECODED;
}

/**
 * A normalized request path in the form deny rules compare (see MATCH_FORM), so that spelling a character escaped
 * or not cannot take a request past a deny written the other way. Allow rules keep comparing the normalized path:
 * an escape only ever makes a request stricter.
 */
export function pathMatchForm(path: string): string {
  return matchForm(path, true);
}

/** A path pattern in the same form: its escapes decoded, its `/*`, `{param}` syntax kept. */
export function patternMatchForm(pattern: string): string {
  return matchForm(pattern, false);
}

function matchForm(path: string, request: boolean): string {
  let out = '';
  let copiedTo = 0;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x25 /* % */) {
      const byte = Number.parseInt(path.slice(i + 1, i + 3), 16);
      if (byte < 0x80 && MATCH_FORM[byte] === DECODED) {
        out += path.slice(copiedTo, i) + String.fromCharCode(byte);
        copiedTo = i + 3;
      }
      i += 2;
    } else if (request && c < 0x80 && MATCH_FORM[c] === ESCAPED_IN_REQUESTS) {
      out += `${path.slice(copiedTo, i)}%${c.toString(16).toUpperCase()}`;
      copiedTo = i + 1;
    }
  }
  return copiedTo === 0 ? path : out + path.slice(copiedTo);
}

/**
 * A deny rule's second reading of a request path in match form: the path cut at its first escaped `?` or `#` (`%3F`,
 * `%23`; normalization upper-cases their hex), without the escaped white space that then ends it; undefined when
 * there is none. An app that decodes before it splits off the query (`new URL(decodeURIComponent(req.url), base)`,
 * `decodeURIComponent(url).split('?')[0]`) routes `/admin%3Fx` and `/admin%20%23` to /admin. Such escapes stay
 * valid (`/tags/%23rust` is a real path), so only denies read the cut: an escape can only ever make a request
 * stricter, never let it past a deny and never into an allow. Every "%" of a match form starts an escape.
 */
export function cutAtEscapedDelimiter(form: string): string | undefined {
  const first = form.indexOf('%');
  if (first === -1) return undefined;
  const question = form.indexOf('%3F', first);
  const hash = form.indexOf('%23', first);
  let end = question === -1 || (hash !== -1 && hash < question) ? hash : question;
  if (end === -1) return undefined;
  for (let space = escapedSpaceBefore(form, end); space > 0; space = escapedSpaceBefore(form, end)) end -= space;
  return form.slice(0, end);
}

export function compilePathMatcher(patterns: readonly string[]): PathMatcher {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  const segmentPatterns: SegmentPattern[] = [];
  for (const pattern of patterns) {
    const open = pattern.endsWith('/*');
    if (pattern.includes('{')) {
      const body = open ? pattern.slice(1, -2) : pattern.slice(1);
      const segments = body.split('/').map((s) => (s.startsWith('{') ? null : s));
      segmentPatterns.push({ segments, open });
    } else if (open) {
      prefixes.push(pattern.slice(0, -1));
    } else {
      exact.add(pattern);
    }
  }
  return { exact, prefixes, patterns: segmentPatterns };
}

export function pathMatches(matcher: PathMatcher, path: string): boolean {
  if (matcher.exact.has(path)) return true;
  for (const prefix of matcher.prefixes) {
    if (path.startsWith(prefix)) return true;
  }
  for (const pattern of matcher.patterns) {
    if (segmentPatternMatches(pattern, path)) return true;
  }
  return false;
}

function segmentPatternMatches(pattern: SegmentPattern, path: string): boolean {
  const { segments, open } = pattern;
  let start = 1;
  for (let i = 0; i < segments.length; i++) {
    if (start > path.length) return false;
    let end = path.indexOf('/', start);
    if (end === -1) end = path.length;
    const literal = segments[i];
    if (literal === null || literal === undefined) {
      if (end === start) return false;
    } else if (end - start !== literal.length || !path.startsWith(literal, start)) {
      return false;
    }
    start = end + 1;
  }
  // After the last segment: a closed pattern needs the path to end; an open one needs a "/" next.
  return open ? start <= path.length : start === path.length + 1;
}
