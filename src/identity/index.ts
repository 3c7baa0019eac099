export { type KubernetesIdentity, SpiffeId, type SpiffeIdReason } from './spiffe-id.js';
export { TrustDomain } from './trust-domain.js';
