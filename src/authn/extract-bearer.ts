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
// It is recognised by what a decoder reads from it, not by its first letters: many decoders never look at the header
// segment (jose's decodeJwt) or accept padding, strays and whitespace in it (atob, Python's b64decode), so a header
// such as `AAAA` or `eyJ…=` carries the same claims as `eyJ…`. Basic and Negotiate credentials have no `.`;
// Digest's dotted values (`realm="api.example.com"`) decode to no JSON.
const WORD_BREAK = /[\s,;"']+/;
// Every character outside the base64 and base64url alphabets: decoders skip them (Node's also skips `=` only at
// the end, so it stops there; others skip it anywhere). Both readings are tried.
const NOT_BASE64 = /[^A-Za-z0-9+/_-]+/g;
// A UTF-8 byte order mark, or a UTF-16 one (two U+FFFD once read as UTF-8): Python's json.loads reads a BOM and
// UTF-16/32 text from bytes.
const BYTE_ORDER_MARK = /^(?:\uFEFF|\uFFFD{2})/;

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

/**
 * Whether some dot-separated segment of `value` (or a word at the ends of one) decodes, read as leniently as common
 * JWT decoders read base64, to a JSON object with at least one member: the header or the claims of a compact JWS.
 */
function carriesJwt(value: string): boolean {
  const segments = value.split('.');
  if (segments.length < 2) return false;
  return segments.some(
    (segment) => decodesToJsonObject(segment) || segment.split(WORD_BREAK).some((word) => decodesToJsonObject(word)),
  );
}

function decodesToJsonObject(segment: string): boolean {
  const padding = segment.indexOf('=');
  return isJsonObject(segment) || (padding !== -1 && isJsonObject(segment.slice(0, padding)));
}

function isJsonObject(encoded: string): boolean {
  const bytes = Buffer.from(encoded.replace(NOT_BASE64, ''), 'base64url');
  // NULs dropped: UTF-16 and UTF-32 text of a JSON object becomes that object's ASCII text.
  const text = Buffer.from(bytes.filter((byte) => byte !== 0))
    .toString('utf8')
    .replace(BYTE_ORDER_MARK, '')
    .trim();
  if (!text.startsWith('{') || !text.endsWith('}')) return false;
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) && Object.keys(parsed).length > 0;
  } catch {
    return false;
  }
}
