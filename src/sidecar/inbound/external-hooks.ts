// The extension points of the external listener: what it calls for every request from an API client
// outside the mesh. The request has no mTLS peer; the client is authenticated by its bearer token alone.
import type { AuthzVerdict, EndUserOutcome, InboundRequestView } from './inbound-hooks.js';

/** One request on the external listener: an inbound view without a peer (headers as received). */
export type ExternalRequestView = Omit<InboundRequestView, 'peer'> & { readonly peer?: never };

/** Bearer token → end user + origin passport; always async, never lets a request through without a token. */
export type AuthenticateExternalClient = (request: ExternalRequestView) => Promise<EndUserOutcome>;

/** The policy decision for a request without a peer: rules with `from` never match it. */
export type ExternalAuthorize = (request: ExternalRequestView) => AuthzVerdict;

export interface ExternalHooks {
  readonly authenticate: AuthenticateExternalClient;
  /** Absent without `inbound.policy`: any valid token is allowed (the listener is opt-in). */
  readonly authorize?: ExternalAuthorize;
}
