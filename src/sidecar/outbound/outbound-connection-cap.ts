// The outbound listener's cap on open connections as applied: its fixed value (OUTBOUND_LIMITS.maxConnections), or
// less where the open-file limit cannot hold it beside the inbound's own cap. Pure: the limit is read by the caller.
import { effectiveMaxConnections, FD_RESERVE } from '../inbound/fd-budget.js';

/** What the inbound takes from the descriptor budget: its configured cap (`inbound.limits`) and its app pool. */
export interface InboundDescriptors {
  readonly maxConnections: number;
  readonly appConnections: number;
}

/**
 * `fixed`, or what the open-file limit leaves once the inbound's applied cap, its app pool and the reserve are set
 * aside: the app's connections must not take the descriptors the inbound was sized to have. Where nothing is left
 * (the inbound's cap was itself lowered to fit), half the reserve: the reserve is kept for the outbound among
 * others, and an outbound with no place would fail every call the app makes.
 */
export function outboundConnectionCap(
  fixed: number,
  fileLimit: number | undefined,
  inbound: InboundDescriptors,
): number {
  if (fileLimit === undefined) return fixed;
  const inboundCap = effectiveMaxConnections(inbound.maxConnections, fileLimit, inbound.appConnections);
  const left = fileLimit - inboundCap - inbound.appConnections - FD_RESERVE;
  return Math.min(fixed, Math.max(FD_RESERVE / 2, left));
}
