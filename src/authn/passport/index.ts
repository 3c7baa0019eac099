export { algorithmForKey, decodeCompact, signCompact, verifyCompact } from './compact-jws.js';
export {
  expiredForPassport,
  linkExpiresAt,
  type MintOptions,
  mintOriginPassport,
  type OriginOptions,
  originExpiresAt,
  ownOrigin,
  type ReceivedPassport,
  wrapPassport,
} from './mint-passport.js';
export {
  type ActorClaim,
  actChain,
  DEFAULT_MAX_DEPTH,
  MAX_PASSPORT_TTL_SECONDS,
  PASSPORT_HEADER,
  PASSPORT_TTL_SECONDS,
  PASSPORT_TYP,
  type PassportClaims,
} from './passport-format.js';
export { type SharedLink, type SharedOrigin, sharedLink, sharedOrigin } from './shared-passport.js';
export { leafKeyOf, sha256Base64url, thumbprintOfDer } from './signer-cache.js';
export {
  type PassportRejectionReason,
  type PassportVerifyContext,
  type VerifiedPassport,
  verifyPassport,
} from './verify-passport.js';
