export { type KubernetesIdentity, SpiffeId, type SpiffeIdReason } from './spiffe-id.js';
export { TrustDomain } from './trust-domain.js';
export { CA_ID_PATH, caSpiffeId, refuseCaId } from './well-known.js';
