// The sidecar data plane: inbound PEP, outbound proxy, composition root.
export type { DataPlaneTelemetry, Direction } from './data-plane-telemetry.js';
export type {
  AuthenticateEndUser,
  Authorize,
  AuthzVerdict,
  EndUserOutcome,
  InboundHooks,
  InboundRequestView,
} from './inbound/inbound-hooks.js';
export { classifyAppError, type InboundLimits, InboundListener } from './inbound/inbound-listener.js';
export { type EgressMatcher, egressMatcher } from './outbound/egress-matcher.js';
export type { OnOutboundRequest, OutboundRequestContext } from './outbound/outbound-hooks.js';
export { classifyPeerError, OUTBOUND_LIMITS, OutboundListener } from './outbound/outbound-listener.js';
export {
  type RunningSidecar,
  type SidecarAgent,
  type SidecarDependencies,
  startSidecar,
} from './sidecar.js';
