// The bound on an end user's claims where a voucher (a sidecar, the edge gateway) carries them in a passport and
// hands them to the app in `x-meshauth-user`: a larger user is refused there, never truncated. Pure.
import type { EndUser } from './end-user.js';
import { tokenInvalid } from './token-rejection.js';

/**
 * The most bytes of claims (JSON of the policy view) a voucher carries by default: the sidecar's
 * `inbound.endUser.maxClaimBytes` and the gateway's `limits.maxClaimBytes`. The voucher writes them twice, base64url,
 * into the passport and `x-meshauth-user`: about 12 KB at this bound, which leaves the app's own headers room under
 * Node's default 16 KiB limit; 10 KB of claims passed it, and made a passport over the 16 KiB the next sidecar takes.
 */
export const MAX_CLAIM_BYTES = 4096;

/**
 * The range either setting takes. At its top the passport is about 14 KB, under the 16 KiB a sidecar takes, but
 * with the app's other headers it needs the next sidecar's `inbound.limits.maxHeaderBytes` raised too.
 */
export const CLAIM_BYTES_RANGE = Object.freeze({ min: 256, max: 8192 });

/** The size of each user's claims: a verified token hands back its kept EndUser, measured once. */
const sizes = new WeakMap<EndUser, number>();

/** The UTF-8 length of the JSON of `user.claims` (what a passport's `usr` carries). */
export function claimBytes(user: EndUser): number {
  let size = sizes.get(user);
  if (size === undefined) {
    size = Buffer.byteLength(JSON.stringify(user.claims));
    sizes.set(user, size);
  }
  return size;
}

/** Throws MESHAUTH_ERR_TOKEN_INVALID, reason `claims_too_large`, when `user`'s claims are over `maxBytes`. */
export function checkClaimBytes(user: EndUser, maxBytes: number): void {
  const size = claimBytes(user);
  if (size > maxBytes) {
    // The issuer of a verified user is a configured one: safe to log whole.
    throw tokenInvalid('claims_too_large', `end-user claims are ${size} bytes; at most ${maxBytes} are vouched for`, {
      issuer: user.iss,
    });
  }
}
