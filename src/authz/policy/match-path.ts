// Path patterns for `to.paths` (SPEC §6). Pure; matching is case-sensitive and allocation-free.
// Forms: exact `/orders`; prefix `/orders/*` (matches `/orders/` and everything below it, never `/orders`
// itself, as in Istio); `{param}` for exactly one non-empty segment (`/users/{id}/profile`), optionally
// ending in `/*`. Patterns must already be in normalized form, or they could never match a request.
import { normalizePath } from '../path-normalize.js';

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
    return error instanceof Error ? error.message : String(error);
  }
  return undefined;
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
