export { BUNDLE_REFRESH_HINT_SECONDS } from './api.js';
export { CaAuthority, type IssuedSvid, type IssueRequest } from './authority.js';
export { type CaPaths, caPaths, createFileExclusive, writeFileAtomic } from './ca-files.js';
export { DEFAULT_K8S_API_SERVER, DEFAULT_K8S_TOKEN_FILE } from './cluster-api-client.js';
export { type Admission, IDENTITY_BURST, IDENTITY_RATE_PER_SECOND, IdentityRateLimit } from './identity-rate-limit.js';
export {
  type CreateJoinTokenOptions,
  consumeJoinToken,
  createJoinToken,
  hashToken,
  type SpentJoinToken,
  spendJoinToken,
} from './join-tokens.js';
export { JwtKeyRing, type JwtKeyRotation, rotateJwtSigningKey } from './jwt-key-ring.js';
export { JWT_KEY_PUBLICATION_DELAY_MS, RETIRED_KEY_RETENTION_MS } from './jwt-retired-keys.js';
export {
  JWT_SVID_ALG,
  type JwtSigningKey,
  loadOrCreateJwtSigningKey,
  writeNewJwtSigningKey,
} from './jwt-signing-key.js';
export {
  JWT_SVID_MAX_TTL_MS,
  JWT_SVID_MIN_TTL_MS,
  type MintedJwtSvid,
  type MintJwtSvidOptions,
  mintJwtSvid,
} from './jwt-svid.js';
export {
  checkK8sTarget,
  initCaForKubernetes,
  type K8sInitOptions,
  type K8sInitResult,
  type K8sTarget,
  writeCaSecretManifest,
} from './k8s-init.js';
export {
  CA_SECRET_FILES,
  caBundlePatchCommand,
  TRUST_BUNDLE_CONFIGMAP,
  WEBHOOK_TLS_SECRET,
  webhookDnsNames,
} from './k8s-manifests.js';
export {
  DEFAULT_K8S_AUDIENCE,
  type KubernetesTokenOptions,
  KubernetesTokenVerifier,
  looksLikeJwt,
  type SaTokenRejection,
  type ServiceAccountIdentity,
} from './kubernetes-token.js';
export { httpsUrl, parseListenAddress } from './listen-address.js';
export { type IssueOfflineOptions, issueOffline } from './offline-issue.js';
export {
  checkIssuerUrl,
  DISCOVERY_PATH,
  JWKS_PATH,
  type OpenIdConfiguration,
  openIdConfiguration,
  TOKEN_PATH,
} from './oidc-metadata.js';
export {
  activateNextRoot,
  publishNextRoot,
  type RotateResult,
  retirePreviousRoot,
  rotateIntermediate,
} from './rotate.js';
export { type CaServer, type CaServerOptions, startCaServer } from './server.js';
export { toSpiffeBundle } from './spiffe-bundle.js';
export { type CaMaterial, type InitCaOptions, type InitCaResult, initCa, loadCaMaterial } from './store.js';
export { FORM_CONTENT_TYPE, type OAuthErrorCode, parseTokenRequest, type TokenRequest } from './token-request.js';
export {
  judgeTokenReview,
  TOKEN_REVIEW_PATH,
  type TokenReviewVerdict,
  tokenReviewRequest,
} from './token-review-judge.js';
