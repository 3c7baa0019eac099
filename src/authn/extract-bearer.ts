// Finds the end-user bearer token in a request's `authorization` header.
// Only the header counts: `access_token` in the query string or body is never read (a token in a URL leaks into
// logs, history and Referer).
// Ambiguous headers are a 400, never a guess.
import { MeshauthError } from '../errors/index.js';
import { carriesJwtClaims } from './jwt-claims-scan.js';

/** Node's `req.headers` (which keeps only the first `authorization`) or `req.rawHeaders` (name, value, …). */
export type RequestHeaders = Readonly<Record<string, string | readonly string[] | undefined>> | readonly string[];

// The bearer token syntax: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
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
    // A JWT's claims under another scheme would reach an app that reads them unverified (jwt-claims-scan.ts).
    if (carriesJwtClaims(value)) {
      throw malformed('scheme', 'token sent without the Bearer scheme');
    }
    return undefined;
  }
  if (credentials === '') throw malformed('empty', 'Bearer without a token');
  if (!B64TOKEN.test(credentials)) throw malformed('syntax', 'Bearer credentials are not a single b64token');
  return credentials;
}
