// Request-path normalization for policy matching. Pure.
// The normalized path is both what policy sees and what the sidecar forwards to the app (Istio practice), so a
// path the app could read differently from the policy is rejected (400 MESHAUTH_ERR_PATH_AMBIGUOUS), never guessed.
import { MeshauthError } from '../errors/index.js';

export type PathRejectReason =
  | 'not_origin_form'
  | 'bad_char'
  | 'nul'
  | 'backslash'
  | 'encoded_slash'
  | 'bad_percent_encoding'
  | 'path_param'
  | 'fragment';

export interface NormalizedTarget {
  /** The normalized path: what policy matches (case-sensitive) and what the app receives. */
  readonly path: string;
  /** The raw query including its `?`, or '' when there is none. Not part of matching; forwarded unchanged. */
  readonly query: string;
  /** `path + query`: the request-target to forward to the app. */
  readonly target: string;
}

const HEX = '0123456789ABCDEF';

/**
 * Normalizes an origin-form request-target (`/path?query`):
 * single percent-decoding of unreserved characters only (other escapes keep their bytes, hex
 * upper-cased), duplicate slashes merged, then `.`/`..` segments removed (never above the root),
 * query split off. Rejects encoded `/` and `\`, raw `\`, NUL, `;` path parameters, `#`, invalid escapes
 * (including escaped bytes that are not valid UTF-8), controls and DEL (raw or escaped), spaces and non-ASCII,
 * escaped white space at the end, and segments that one more decode turns into a dot segment.
 */
export function normalizePath(target: string): NormalizedTarget {
  if (target.length === 0 || target.charCodeAt(0) !== 0x2f) {
    throw ambiguous('not_origin_form', 'the request-target must be an origin-form path starting with "/"');
  }
  const queryAt = target.indexOf('?');
  const rawPath = queryAt === -1 ? target : target.slice(0, queryAt);
  const query = queryAt === -1 ? '' : target.slice(queryAt);
  checkQuery(query);
  const decoded = decodeUnreserved(rawPath);
  const path = removeDotSegments(mergeSlashes(decoded ?? rawPath));
  // Only an escape can read differently after one more decode: a path without "%" costs nothing more here.
  if (decoded !== undefined) checkDecodedOnceMore(path);
  return { path, query, target: path + query };
}

// What an app that decodes the path before parsing it (`new URL(decodeURIComponent(req.url), base)`, `decodeURI`,
// `.trim()`, Python's `unquote(...).strip()`) reads in the path we forward:
//  - escaped white space at the end of the path: `new URL` (which drops leading and trailing controls and spaces)
//    and `trim()`/`strip()` drop it, so `/admin%20` reaches /admin. `%20` elsewhere is an ordinary byte. The list
//    (ESCAPED_SPACES) is `%20` and what JavaScript's trim() and Python's strip() drop beyond ASCII; escaped controls
//    are refused before (decodeUnreserved).
//  - a segment made of `.` and `%252e` (one or two): one more decode gives `..`, `.%2e` or `%2e%2e`, which the URL
//    parser resolves as a dot segment (`new URL` reads `%2e` as `.` there), so `/public/%252e%252e/admin` passed an
//    allow on `/public/*` and reached /admin. The same for such a segment ending at an escaped `?` or `#`
//    (`/public/..%3F`): the app cuts its path there, and the URL parser resolves what is left.
const DOT_SEGMENT_AFTER_DECODE = /\/(?:\.|%252[Ee]){1,2}(?:\/|$|%3F|%23)/;

function checkDecodedOnceMore(path: string): void {
  if (escapedSpaceBefore(path, path.length) > 0) {
    throw ambiguous('bad_char', 'the path ends in escaped white space, which an app that decodes it drops');
  }
  if (DOT_SEGMENT_AFTER_DECODE.test(path)) {
    throw ambiguous('bad_percent_encoding', 'a double-encoded dot segment (%252e), which one more decode resolves');
  }
}

// In normalized form (UTF-8, upper-case hex). Each holds its lead byte, so none ends another valid sequence.
const ESCAPED_SPACES: readonly string[] = [
  0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a,
  0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff,
].map((c) => encodeURIComponent(String.fromCodePoint(c)));

/**
 * The length of the escaped white space character that ends `path.slice(0, end)` (`%20`, `%C2%A0`, …), or 0.
 * `path` is normalized (escapes in upper-case hex). Also the deny rules' cut at an escaped `?` (match-path.ts).
 */
export function escapedSpaceBefore(path: string, end: number): number {
  if (path.charCodeAt(end - 3) !== 0x25 /* % */) return 0;
  for (const space of ESCAPED_SPACES) if (path.endsWith(space, end)) return space.length;
  return 0;
}

/** The path with its unreserved escapes decoded and the others' hex upper-cased; undefined when it has no escape. */
function decodeUnreserved(raw: string): string | undefined {
  let out = '';
  let copiedTo = 0;
  // Start of the current run of escaped bytes ≥ 0x80 (one or more UTF-8 sequences), or -1.
  let highRun = -1;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (highRun !== -1 && (c !== 0x25 || hexValue(raw.charCodeAt(i + 1)) < 8)) {
      checkUtf8(raw, highRun, i);
      highRun = -1;
    }
    if (c === 0x25 /* % */) {
      const hi = hexValue(raw.charCodeAt(i + 1));
      const lo = hexValue(raw.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) {
        throw ambiguous('bad_percent_encoding', 'a "%" is not followed by two hex digits');
      }
      const byte = hi * 16 + lo;
      if (byte >= 0x80 && highRun === -1) highRun = i;
      if (byte === 0) throw ambiguous('nul', 'the path contains an encoded NUL (%00)');
      // As the raw bytes are (checkRawPathChar): an app that decodes before parsing gets the control itself, and the
      // URL parser removes tab and newlines anywhere (`/ad%09min` → /admin), trim() others at the ends.
      if (byte < 0x20 || byte === 0x7f) throw ambiguous('bad_char', 'the path contains an escaped control character');
      if (byte === 0x2f) throw ambiguous('encoded_slash', 'the path contains an encoded "/" (%2F)');
      if (byte === 0x5c) throw ambiguous('backslash', 'the path contains an encoded "\\" (%5C)');
      out += raw.slice(copiedTo, i);
      // Unreserved characters are decoded once; everything else (including %25) keeps its escape, so a
      // double-encoded %252e stays %252e here (an app that decodes once more reads %2e: checkDecodedOnceMore).
      out += isUnreserved(byte) ? String.fromCharCode(byte) : `%${HEX[hi]}${HEX[lo]}`;
      i += 2;
      copiedTo = i + 1;
      continue;
    }
    checkRawPathChar(c);
  }
  if (highRun !== -1) checkUtf8(raw, highRun, raw.length);
  return copiedTo === 0 ? undefined : out + raw.slice(copiedTo);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

// An invalid encoding is a 400: escaped bytes must form valid UTF-8. Overlong forms such as %C0%AE ('.') or
// %C0%AF ('/') stay escaped here, but a lenient decoder in the app (old Tomcat, IIS) turns them into dot segments
// or slashes the policy never saw; a lone %E9 (Latin-1) is equally ambiguous. `raw[from, to)` holds only escapes.
function checkUtf8(raw: string, from: number, to: number): void {
  const bytes = new Uint8Array((to - from) / 3);
  for (let i = 0; i < bytes.length; i++) {
    bytes[i] = hexValue(raw.charCodeAt(from + 3 * i + 1)) * 16 + hexValue(raw.charCodeAt(from + 3 * i + 2));
  }
  try {
    UTF8.decode(bytes);
  } catch {
    throw ambiguous('bad_percent_encoding', 'percent-encoded bytes are not valid UTF-8 (e.g. an overlong %C0%AE)');
  }
}

function checkRawPathChar(c: number): void {
  if (c === 0) throw ambiguous('nul', 'the path contains a NUL byte');
  if (c === 0x5c) throw ambiguous('backslash', 'the path contains "\\"');
  // Servlet containers and some frameworks strip `;params` from segments before routing: `/admin;x` would reach
  // /admin while a policy saw "/admin;x", so `;` is refused like Envoy's strict mode.
  if (c === 0x3b) throw ambiguous('path_param', 'the path contains a ";" path parameter');
  if (c === 0x23) throw ambiguous('fragment', 'the request-target contains a fragment ("#")');
  if (c <= 0x20 || c >= 0x7f) throw ambiguous('bad_char', 'the path contains a control, space or non-ASCII character');
}

function checkQuery(query: string): void {
  for (let i = 0; i < query.length; i++) {
    const c = query.charCodeAt(i);
    if (c === 0) throw ambiguous('nul', 'the query contains a NUL byte');
    if (c === 0x23) throw ambiguous('fragment', 'the request-target contains a fragment ("#")');
    if (c <= 0x20 || c >= 0x7f) {
      throw ambiguous('bad_char', 'the query contains a control, space or non-ASCII character');
    }
  }
}

function mergeSlashes(path: string): string {
  return path.includes('//') ? path.replace(/\/{2,}/g, '/') : path;
}

/** Removes `.` and `..` segments from an absolute path whose slashes are already merged. */
function removeDotSegments(path: string): string {
  if (!path.includes('/.')) return path;
  const segments = path.slice(1).split('/');
  const out: string[] = [];
  const last = segments.length - 1;
  segments.forEach((segment, index) => {
    if (segment === '.') {
      if (index === last) out.push('');
    } else if (segment === '..') {
      out.pop();
      if (index === last) out.push('');
    } else {
      out.push(segment);
    }
  });
  return `/${out.join('/')}`;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** ALPHA / DIGIT / "-" / "." / "_" / "~" (the unreserved characters). */
function isUnreserved(c: number): boolean {
  return (
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x30 && c <= 0x39) ||
    c === 0x2d ||
    c === 0x2e ||
    c === 0x5f ||
    c === 0x7e
  );
}

function ambiguous(reason: PathRejectReason, why: string): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_PATH_AMBIGUOUS', `ambiguous request path: ${why}`, { reason });
}
