// End-user authentication: bearer extraction, JWKS cache, token verification, the HTTP challenge.
export { type BearerChallenge, bearerChallenge } from './bearer-challenge.js';
export {
  createDemoIssuer,
  type DemoClient,
  type DemoIssuer,
  type DemoIssuerOptions,
  type DemoTokenRequest,
} from './demo-issuer.js';
export { type EndUser, endUserFromClaims, POLICY_CLAIMS, parseUserHeader, userHeaderValue } from './end-user.js';
export {
  discoveryUrl,
  END_USER_DEFAULTS,
  type EndUserConfig,
  type EndUserConfigOrigin,
  type EndUserIssuerConfig,
  type EndUserTunables,
  JWKS_FILE_HINT,
  MAX_CLOCK_SKEW_SECONDS,
  resolveEndUserTunables,
  SUPPORTED_ALGORITHMS,
  validateEndUserConfig,
} from './end-user-config.js';
export { EndUserVerifier, type EndUserVerifierOptions } from './end-user-verifier.js';
export { extractBearer, type RequestHeaders } from './extract-bearer.js';
export { checkFetchableUrl, type FetchFailure, FetchJsonError, fetchJson } from './fetch-json.js';
export {
  JwksCache,
  type JwksCacheOptions,
  type JwksCacheStats,
  type JwksFailure,
  type JwksTunables,
  type RefreshTrigger,
} from './jwks-cache.js';
export { checkJwksFileUri, isFileUri, jwksFileFingerprint, readJwksFile } from './jwks-file.js';
export { importedKey, type KeySetResult, type UsableKey, usableKeys } from './jwks-keys.js';
export { TOKEN_REJECTION_REASONS, type TokenRejectionReason, tokenInvalid } from './token-rejection.js';
export { inspectToken, type TokenShape } from './token-shape.js';
