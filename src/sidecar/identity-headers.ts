// The one owner of the identity headers (strip, then set, so no client-sent copy survives): their names, the test that
// a header is one of them, and setting them on the header list for the app after every received copy was stripped. The
// inbound names `x-forwarded-client-cert` and `x-meshauth-*` only through this module.
import { PASSPORT_HEADER } from '../authn/passport/passport-format.js';

export { PASSPORT_HEADER };
export const XFCC = 'x-forwarded-client-cert';
export const USER_HEADER = 'x-meshauth-user';
const MESHAUTH_PREFIX = 'x-meshauth-';

/**
 * True for a header only the sidecar may set (lower-case name), also spelt with `_` for `-` (servers such as
 * Werkzeug, PHP and CGI read `x_forwarded_client_cert` as the same header); `keepPassport` lets an app-sent passport
 * pass under its own name only.
 */
export function isIdentityHeader(lowerName: string, keepPassport: boolean): boolean {
  if (lowerName.charCodeAt(0) !== 0x78 /* x */) return false; // most names, at the cost of one comparison
  const name = lowerName.includes('_') ? lowerName.replaceAll('_', '-') : lowerName;
  if (name === XFCC) return true;
  if (!name.startsWith(MESHAUTH_PREFIX)) return false;
  return !(keepPassport && lowerName === PASSPORT_HEADER);
}

/** What the authenticators verified, as the identity headers for the app. */
export interface VerifiedIdentity {
  /** XFCC value of the mTLS peer; undefined on the external listener (no client certificate). */
  readonly xfcc: string | undefined;
  /** Headers set by the end-user step (`x-meshauth-user`, `x-meshauth-passport`), names lower-case. */
  readonly headers: Readonly<Record<string, string>> | undefined;
}

/**
 * Sets the identity headers on `out`, a flat list to which the copy step then adds the received headers without
 * any identity header (http-headers.ts copy functions), so each one appears exactly once, with the verified value.
 */
export function setIdentityHeaders(out: string[], identity: VerifiedIdentity): void {
  if (identity.xfcc !== undefined) out.push(XFCC, identity.xfcc);
  if (identity.headers !== undefined) {
    for (const name in identity.headers) out.push(name.toLowerCase(), identity.headers[name] as string);
  }
}
