// One passport for many requests: every later hop keeps the origins it verified by their text, and each peer
// connection the links it verified, so a new origin or link per request would make the next hop check a signature
// again for each. The places that mint them (the sidecar's voucher and its outbound side, the edge gateway) decide
// here when a shared one may still be handed out; where they keep it is theirs (by EndUser object, by claims, by
// received passport and next hop).
import type { SpiffeId } from '../../identity/index.js';
import type { X509Svid } from '../../pki/index.js';
import type { EndUser } from '../end-user.js';
import {
  linkExpiresAt,
  mintOriginPassport,
  originExpiresAt,
  ownOrigin,
  type ReceivedPassport,
  wrapPassport,
} from './mint-passport.js';
import { MAX_PASSPORT_TTL_SECONDS, PASSPORT_TTL_SECONDS } from './passport-format.js';

interface Shared {
  /** Held weakly: a replaced SVID's key is not kept alive by a passport it signed. */
  readonly svid: WeakRef<X509Svid>;
  readonly iat: number;
  readonly expiresAt: number;
}

export interface SharedOrigin extends Shared {
  /** What this sidecar's app forwards: the origin as received from itself. */
  readonly received: ReceivedPassport;
}

export interface SharedLink extends Shared {
  /** The header value for the next hop: the link and the origin it names. */
  readonly value: string;
}

/**
 * `previous` while it is still good to hand out, else a new origin. A shared origin is minted for
 * MAX_PASSPORT_TTL_SECONDS and handed out only while PASSPORT_TTL_SECONDS of it are left (stillShared).
 */
export function sharedOrigin(
  previous: SharedOrigin | undefined,
  user: EndUser,
  svid: X509Svid,
  at: Date,
): SharedOrigin {
  if (previous !== undefined && stillShared(previous, svid, at, user.expiresAt)) return previous;
  const minting = { svid, now: at, user, ttlSeconds: MAX_PASSPORT_TTL_SECONDS };
  return {
    received: ownOrigin(mintOriginPassport(minting), svid.id, user.expiresAt),
    svid: new WeakRef(svid),
    iat: Math.floor(at.getTime() / 1000),
    expiresAt: originExpiresAt(minting),
  };
}

/** `previous` while it is still good to hand out, else a new link wrapping `received` for `audience`. */
export function sharedLink(
  previous: SharedLink | undefined,
  received: ReceivedPassport,
  audience: SpiffeId,
  svid: X509Svid,
  at: Date,
): SharedLink {
  if (previous !== undefined && stillShared(previous, svid, at, received.userExpiresAt)) return previous;
  const minting = { svid, audience, now: at, received, ttlSeconds: MAX_PASSPORT_TTL_SECONDS };
  return {
    value: wrapPassport(minting),
    svid: new WeakRef(svid),
    iat: Math.floor(at.getTime() / 1000),
    expiresAt: linkExpiresAt(minting),
  };
}

/**
 * Whether a passport minted for MAX_PASSPORT_TTL_SECONDS may still be handed out: while PASSPORT_TTL_SECONDS of it are
 * left, so the next hop has as long as with one of its own, or, once it ends with the user's token, until then (a new
 * one could not live longer). Not when the SVID changed or the clock went back past the mint (its `iat` would lie in
 * the next hop's future).
 */
function stillShared(previous: Shared, svid: X509Svid, at: Date, userExpiresAt: number): boolean {
  const nowS = at.getTime() / 1000;
  return (
    previous.svid.deref() === svid &&
    nowS >= previous.iat &&
    previous.expiresAt > nowS &&
    (previous.expiresAt - nowS >= PASSPORT_TTL_SECONDS || (userExpiresAt !== 0 && previous.expiresAt >= userExpiresAt))
  );
}
