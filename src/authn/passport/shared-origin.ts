// One origin passport for many requests of one end user: every later hop keeps the origins it verified by their
// text, so a new origin per request would make each of them validate its signer again. Both places that vouch for a
// user (the sidecar's voucher and the edge gateway) decide here when a shared origin may still be handed out; where
// they keep it is theirs (by EndUser object, by claims).
import type { X509Svid } from '../../pki/index.js';
import type { EndUser } from '../end-user.js';
import { mintOriginPassport, originExpiresAt, ownOrigin, type ReceivedPassport } from './mint-passport.js';
import { MAX_PASSPORT_TTL_SECONDS, PASSPORT_TTL_SECONDS } from './passport-format.js';

export interface SharedOrigin {
  /** What this sidecar's app forwards: the origin as received from itself. */
  readonly received: ReceivedPassport;
  /** Held weakly: a replaced SVID's key is not kept alive by an origin it signed. */
  readonly svid: WeakRef<X509Svid>;
  readonly iat: number;
  readonly expiresAt: number;
}

/**
 * `previous` while it is still good to hand out, else a new origin. A shared origin is minted for
 * MAX_PASSPORT_TTL_SECONDS and handed out only while PASSPORT_TTL_SECONDS of it are left, so a call chain has as long
 * to forward it as with an origin of its own, or, once it ends with the user's token, until then (a new one could not
 * live longer); it is minted again when the SVID changed or the clock went back past the mint (its `iat` would lie in
 * the next hop's future).
 */
export function sharedOrigin(
  previous: SharedOrigin | undefined,
  user: EndUser,
  svid: X509Svid,
  at: Date,
): SharedOrigin {
  const nowS = at.getTime() / 1000;
  if (
    previous !== undefined &&
    previous.svid.deref() === svid &&
    nowS >= previous.iat &&
    previous.expiresAt > nowS &&
    (previous.expiresAt - nowS >= PASSPORT_TTL_SECONDS || endsWithToken(previous, user))
  ) {
    return previous;
  }
  const minting = { svid, now: at, user, ttlSeconds: MAX_PASSPORT_TTL_SECONDS };
  return {
    received: ownOrigin(mintOriginPassport(minting), svid.id, user.expiresAt),
    svid: new WeakRef(svid),
    iat: Math.floor(nowS),
    expiresAt: originExpiresAt(minting),
  };
}

/** Whether `origin` already lives until the user's token ends, the longest any origin for it may. */
function endsWithToken(origin: SharedOrigin, user: EndUser): boolean {
  return user.expiresAt !== 0 && origin.expiresAt >= user.expiresAt;
}
