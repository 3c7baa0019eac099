// The bound on an end user's claims where a voucher (a sidecar, the edge gateway) carries them in a passport and
// hands them to the app in `x-meshauth-user`: a larger user is refused there, never truncated. Pure.
import type { EndUser } from './end-user.js';
import { tokenInvalid } from './token-rejection.js';

/**
 * The most bytes of claims (JSON of the policy view) a voucher carries by default: the sidecar's
 * `inbound.endUser.maxClaimBytes` and the gateway's `limits.maxClaimBytes`. The voucher writes them twice, base64url,
 * into the passport and `x-meshauth-user`. Measured at this bound, P-256 SVIDs: 14.5–15 KB of identity headers at the
 * app, about 1.1 KB under Node's default 16 KiB header limit at the 8th hop; RSA-2048 SVIDs (larger signatures and
 * keys) about 16 KB, past that limit once the request carries about 0.9 KB of its own headers: with RSA SVIDs lower
 * it to about 3000 or raise the apps' header limit. 10 KB of claims made a passport over the 16 KiB a sidecar takes.
 */
export const MAX_CLAIM_BYTES = 4096;

/**
 * The range either setting takes. At its top, with P-256 SVIDs, the passport stays under the 16 KiB a sidecar takes
 * through 8 hops, and the app needs a larger header limit; with RSA-2048 SVIDs it passes 16 KiB at the 8th hop.
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
