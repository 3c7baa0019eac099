// Checks made on an end-user token before any key lookup or crypto (anything not plainly a JWT is refused
// before it can reach a parser): size, compact JWS syntax, header hygiene, and the unverified `iss` used only
// to pick which configured issuer's rules apply. Pure: no I/O, no clock.
import { jsonShapeError } from './json-shape.js';
import { tokenInvalid } from './token-rejection.js';

export interface TokenShape {
  readonly header: Readonly<Record<string, unknown>>;
  readonly alg: string;
  readonly kid: string | undefined;
  /** Unverified `iss`: a lookup key, never trusted until the signature checks out. */
  readonly iss: string;
}

const COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const COMPACT_JWE = /^[A-Za-z0-9_-]*(\.[A-Za-z0-9_-]*){4}$/;
/** Header parameters that point at keys or certificates we would have to fetch or trust blindly (J09). */
const FORBIDDEN_HEADERS = ['jku', 'x5u', 'jwk', 'x5c', 'b64'] as const;
const MAX_KID_LENGTH = 256;
// ignoreBOM: a byte-order mark stays in the text, where JSON.parse refuses it (a JWT is UTF-8 without one).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeSegment(segment: string, what: string): Record<string, unknown> {
  let text: string;
  let value: unknown;
  try {
    text = utf8.decode(Buffer.from(segment, 'base64url'));
    value = JSON.parse(text);
  } catch {
    throw tokenInvalid('format', `${what} is not base64url JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw tokenInvalid('format', `${what} is not a JSON object`);
  }
  const shape = jsonShapeError(text);
  if (shape === 'duplicate_name') throw tokenInvalid('format', `${what} names a member twice`);
  if (shape === 'too_deep') throw tokenInvalid('format', `${what} is nested too deeply`);
  return value as Record<string, unknown>;
}

/** Truncates untrusted strings before they reach a log line. */
export function forLog(value: unknown): string | undefined {
  return typeof value === 'string' ? value.slice(0, 128) : undefined;
}

/**
 * Parses a compact JWS far enough to route it. Throws MESHAUTH_ERR_TOKEN_INVALID with reason `too_large`,
 * `format`, `alg_not_allowed`, `forbidden_header`, `crit` or `issuer`.
 */
export function inspectToken(token: string, maxBytes: number): TokenShape {
  // Length in UTF-16 units bounds the byte length from below; check it first so a huge string is never scanned.
  if (token.length > maxBytes || Buffer.byteLength(token) > maxBytes) {
    throw tokenInvalid('too_large', `token exceeds ${maxBytes} bytes`);
  }
  if (!COMPACT.test(token)) {
    if (COMPACT_JWE.test(token)) throw tokenInvalid('format', 'encrypted tokens (JWE) are not accepted');
    throw tokenInvalid('format', 'not a compact JWS');
  }
  const [encodedHeader, encodedPayload] = token.split('.') as [string, string, string];
  const header = decodeSegment(encodedHeader, 'header');
  const { alg } = header;
  // Global rule before the issuer's allow-list: never `none` in any casing, never HMAC (J01, J02).
  if (typeof alg !== 'string' || alg === '' || alg.toLowerCase() === 'none' || /^hs/i.test(alg)) {
    throw tokenInvalid('alg_not_allowed', 'algorithm not allowed', { alg: forLog(alg) ?? '' });
  }
  for (const name of FORBIDDEN_HEADERS) {
    if (Object.hasOwn(header, name)) {
      throw tokenInvalid('forbidden_header', `header parameter ${name} is not accepted`, { alg });
    }
  }
  // We understand no JWS extension, so any `crit` names one we do not, and an extension marked critical that the
  // reader does not understand makes the token invalid.
  if (Object.hasOwn(header, 'crit')) throw tokenInvalid('crit', 'critical header extensions are not supported');
  const { kid } = header;
  if (kid !== undefined && (typeof kid !== 'string' || kid === '' || kid.length > MAX_KID_LENGTH)) {
    throw tokenInvalid('unknown_kid', 'kid is not a short string', { alg });
  }
  const payload = decodeSegment(encodedPayload, 'payload');
  const { iss } = payload;
  if (typeof iss !== 'string' || iss === '') throw tokenInvalid('issuer', 'token has no iss', { alg });
  return { header, alg, kid, iss };
}
