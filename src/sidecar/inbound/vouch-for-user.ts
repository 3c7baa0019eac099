// The voucher's step, shared by the mTLS inbound and the external listener: once an end user's bearer
// token is valid, this sidecar replaces it with an origin passport it signs itself, remembers that origin so the
// app can forward it downstream through the outbound side, and hands the app the passport and the user header.
import type { CredentialHolder } from '../../agent/index.js';
import { type EndUser, userHeaderValue } from '../../authn/end-user.js';
import type { VerifyOptions } from '../../authn/end-user-verifier.js';
import { PASSPORT_HEADER, type SharedOrigin, sharedOrigin } from '../../authn/passport/index.js';
import type { EndUserSettings } from '../../config/index.js';
import { MeshauthError } from '../../errors/index.js';
import type { X509Svid } from '../../pki/index.js';
import { USER_HEADER } from '../identity-headers.js';
import type { PassportStore } from '../passport-store.js';
import type { EndUserOutcome } from './inbound-hooks.js';

/**
 * How long the outbound side may wrap a remembered passport at most. Each entry is also kept no longer than its
 * origin lives (passportStoreExpiry): a link minted after that is refused by the next hop, so the call should fail
 * here, where it is made, and not one hop later as "expired".
 */
export const PASSPORT_STORE_TTL_MS = 60_000;

/** Until when (ms) a passport whose user and origin expire at the given seconds may be wrapped, from `atMs`. */
export function passportStoreExpiry(userExpiresAt: number, originExpiresAt: number, atMs: number): number {
  return Math.min(userExpiresAt * 1000, originExpiresAt * 1000, atMs + PASSPORT_STORE_TTL_MS);
}
export { USER_HEADER } from '../identity-headers.js';

/**
 * How the sidecar's vouchers (the mTLS inbound, the external listener) verify a bearer token: a token past its exp
 * (within the skew) is refused as expired, and a user whose claims are over `inbound.endUser.maxClaimBytes` as
 * `claims_too_large` (401 here, counted and logged once), where a larger passport and `x-meshauth-user` would
 * otherwise fail later, at the app (431) or at the next sidecar (passport `too_large`). Built once per authenticator.
 */
export function vouchingOptions(settings: Pick<EndUserSettings, 'maxClaimBytes'>): VerifyOptions {
  return Object.freeze({ forPassport: true, maxClaimBytes: settings.maxClaimBytes });
}

export interface VoucherContext {
  readonly holder: CredentialHolder;
  readonly store: PassportStore;
  readonly now: () => Date;
  /** Remove `authorization` before the app (false only with `forwardOriginalToken`). */
  readonly dropAuthorization: boolean;
}

/**
 * The PassportStore owner of a user's passports: one bound per end user, and at the inbound per end user and peer
 * (`fromPeer`), so a peer sending many links for a user evicts only its own, never the passports other hops sent.
 * JSON keeps the parts apart whatever they hold.
 */
export function passportOwner(user: EndUser, fromPeer?: string): string {
  return JSON.stringify(fromPeer === undefined ? [user.iss, user.sub] : [user.iss, user.sub, fromPeer]);
}

/**
 * The origin to hand `user` at `at` (sharedOrigin from `previous`), remembered in `store` so the outbound side may
 * wrap it: on every request, as a full store may have let it go, and bounded per user (passportOwner). Both
 * vouchers call it, the sidecar's (below) and the edge gateway's, each keeping `previous` its own way.
 */
export function handOutOrigin(
  previous: SharedOrigin | undefined,
  user: EndUser,
  svid: X509Svid,
  at: Date,
  store: PassportStore,
): SharedOrigin {
  const shared = sharedOrigin(previous, user, svid, at);
  store.remember(
    shared.received,
    passportStoreExpiry(user.expiresAt, shared.expiresAt, at.getTime()),
    passportOwner(user),
  );
  return shared;
}

/**
 * The origin each kept user was last given. A token the verifier has checked before gives back the same EndUser
 * object (EndUserVerifier keeps verified tokens), so its requests share one origin (sharedOrigin).
 */
const recentOrigins = new WeakMap<EndUser, SharedOrigin>();

export function vouchForUser(user: EndUser, context: VoucherContext): EndUserOutcome {
  const credentials = context.holder.current;
  if (credentials === undefined) return { reject: new MeshauthError('MESHAUTH_ERR_NOT_READY', 'no SVID yet') };
  const previous = recentOrigins.get(user);
  const recent = handOutOrigin(previous, user, credentials.svid, context.now(), context.store);
  if (recent !== previous) recentOrigins.set(user, recent);
  const origin = recent.received.origin;
  return {
    user,
    chain: [],
    headers: { [PASSPORT_HEADER]: origin, [USER_HEADER]: userHeaderValue(user) },
    dropAuthorization: context.dropAuthorization,
  };
}
