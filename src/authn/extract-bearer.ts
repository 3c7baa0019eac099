// Finds the end-user bearer token in a request's `authorization` header.
// Only the header counts: `access_token` in the query string or body is never read (a token in a URL leaks into
// logs, history and Referer).
// Ambiguous headers are a 400, never a guess.
import { MeshauthError } from '../errors/index.js';

/** Node's `req.headers` (which keeps only the first `authorization`) or `req.rawHeaders` (name, value, …). */
export type RequestHeaders = Readonly<Record<string, string | readonly string[] | undefined>> | readonly string[];

// The bearer token syntax: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
// A JWT sent under another scheme, or none, must not pass to the app unverified: apps that take the token with
// `substring(7)` or an unanchored /Bearer\s+(\S+)/ read it from `Bearer,<jwt>` or from `Basic …, Bearer <jwt>` too.
// It is recognised by its claims segment: one that follows a `.` and whose bytes, read as leniently as common JWT
// decoders read base64 (Python's b64decode skips strays and `=`, atob stops at padding), open a JSON object with a
// member. Basic and Negotiate credentials have no `.`; Digest's dotted values (`realm="api.example.com"`) decode to
// no `{"`. Each character is looked at a bounded number of times, so a long hostile value costs no more than a
// short one per byte.

/** Each base64 and base64url character's six bits; -1 for every other character (skipped, as lenient decoders do). */
const SEXTETS: Int8Array = (() => {
  const table = new Int8Array(128).fill(-1);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  for (let i = 0; i < alphabet.length; i++) table[alphabet.charCodeAt(i)] = i;
  for (const [c, v] of [
    ['+', 62],
    ['-', 62],
    ['/', 63],
    ['_', 63],
  ] as const)
    table[c.charCodeAt(0)] = v;
  return table;
})();

/** Bytes a JSON reader passes over before a value or a key: whitespace, NUL (UTF-16/32), byte order mark bytes. */
const SKIPPED_BYTES: ReadonlySet<number> = new Set([0x20, 0x09, 0x0a, 0x0d, 0x00, 0xef, 0xbb, 0xbf, 0xfe, 0xff]);

function malformed(reason: string, message: string): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_TOKEN_REQUEST_MALFORMED', message, { reason });
}

function authorizationValues(headers: RequestHeaders): string[] {
  const values: string[] = [];
  if (Array.isArray(headers)) {
    // rawHeaders: Node drops duplicate `authorization` from req.headers, so duplicates are only visible here.
    for (let i = 0; i + 1 < headers.length; i += 2) {
      if ((headers[i] as string).toLowerCase() === 'authorization') values.push(headers[i + 1] as string);
    }
    return values;
  }
  for (const [name, value] of Object.entries(headers as Readonly<Record<string, string | readonly string[]>>)) {
    if (name.toLowerCase() !== 'authorization' || value === undefined) continue;
    if (typeof value === 'string') values.push(value);
    else values.push(...value);
  }
  return values;
}

/**
 * The bearer token, or undefined when the request carries none (or uses another scheme, e.g. Basic, meant for
 * the app). Throws MESHAUTH_ERR_TOKEN_REQUEST_MALFORMED (400) for two `authorization` headers, `Bearer` twice,
 * an empty value, or a JWT sent under another scheme or none. Pass `req.rawHeaders` to see duplicates.
 */
export function extractBearer(headers: RequestHeaders): string | undefined {
  const values = authorizationValues(headers);
  if (values.length === 0) return undefined;
  if (values.length > 1) throw malformed('duplicate', 'more than one authorization header');
  const value = (values[0] as string).trim();
  if (value === '') throw malformed('empty', 'empty authorization header');
  // Any whitespace ends the scheme, not only SP (the grammar says 1*SP): apps commonly split on /\s+/, so a token
  // after a tab or a no-break space must be verified here rather than passed through as "no token".
  const space = value.search(/\s/);
  const scheme = space === -1 ? value : value.slice(0, space);
  const credentials = space === -1 ? '' : value.slice(space + 1).trim();
  if (scheme.toLowerCase() !== 'bearer') {
    if (carriesJwt(value)) {
      throw malformed('scheme', 'token sent without the Bearer scheme');
    }
    return undefined;
  }
  if (credentials === '') throw malformed('empty', 'Bearer without a token');
  if (!B64TOKEN.test(credentials)) throw malformed('syntax', 'Bearer credentials are not a single b64token');
  return credentials;
}

/** Whether a segment of `value` after a `.` opens a JSON object with a member (see above): a JWT's claims. */
function carriesJwt(value: string): boolean {
  for (let dot = value.indexOf('.'); dot !== -1; ) {
    const next = value.indexOf('.', dot + 1);
    const end = next === -1 ? value.length : next;
    // Two bytes take at least three characters.
    if (end - dot > 3) {
      const read = scanClaims(value, dot + 1, end, false);
      if (read === OPENS || (read === NOT_AFTER_PADDING && scanClaims(value, dot + 1, end, true) === OPENS)) {
        return true;
      }
    }
    dot = next;
  }
  return false;
}

const OPENS = 1;
const DOES_NOT_OPEN = 0;
/** Does not open, read across a `=`: a decoder that starts a new quad after one may read the rest otherwise. */
const NOT_AFTER_PADDING = 2;

/**
 * Whether the bytes `text[from, to)` decodes to begin with `{` and then `"`, skipping whitespace, NULs (UTF-16 and
 * UTF-32 text, which Python's json reads) and byte order mark bytes before each. Characters outside both base64
 * alphabets are skipped, `=` too (read on across it), or, with `quadAtPadding`, `=` ends a quad and the next
 * character starts a new one. Stops at the second byte that counts.
 */
function scanClaims(text: string, from: number, to: number, quadAtPadding: boolean): number {
  let bits = 0;
  let pending = 0;
  let opened = false;
  let padding = false;
  for (let i = from; i < to; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x3d /* = */) {
      padding = true;
      if (quadAtPadding) pending = 0;
      continue;
    }
    const sextet = code < 128 ? (SEXTETS[code] as number) : -1;
    if (sextet === -1) continue;
    bits = ((bits << 6) | sextet) & 0xfff;
    pending += 6;
    if (pending < 8) continue;
    pending -= 8;
    const byte = (bits >> pending) & 0xff;
    if (SKIPPED_BYTES.has(byte)) continue;
    if (opened && byte === 0x22 /* " */) return OPENS;
    if (opened || byte !== 0x7b /* { */) break;
    opened = true;
  }
  return padding ? NOT_AFTER_PADDING : DOES_NOT_OPEN;
}
