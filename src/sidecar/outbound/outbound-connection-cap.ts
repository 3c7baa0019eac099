// The outbound listener's cap on open connections as applied: `outbound.limits.maxConnections`, or
// less where the open-file limit cannot hold it beside the inbound's own cap. Pure: the limit is read by the caller.
import { effectiveMaxConnections, FD_RESERVE } from '../inbound/fd-budget.js';

/** What the inbound takes from the descriptor budget: its configured cap (`inbound.limits`) and its app pool. */
export interface InboundDescriptors {
  readonly maxConnections: number;
  readonly appConnections: number;
}

/**
 * `configured`, or what the open-file limit leaves once the inbound's applied cap, its app pool and the reserve are
 * set aside, counted at two descriptors a connection (an egress tunnel holds its upstream socket too): the app's
 * connections must not take the descriptors the inbound was sized to have. Where nothing is left (the inbound's cap
 * was itself lowered to fit), a quarter of the reserve, at two each: an outbound with no place would fail every call
 * the app makes.
 */
export function outboundConnectionCap(
  configured: number,
  fileLimit: number | undefined,
  inbound: InboundDescriptors,
  sharedWithTcp = false,
): number {
  if (fileLimit === undefined) return configured;
  const inboundCap = effectiveMaxConnections(inbound.maxConnections, fileLimit, inbound.appConnections);
  const left = fileLimit - inboundCap - inbound.appConnections - FD_RESERVE;
  const pairs = Math.floor(left / 2);
  // With `outbound.tcp` listeners, they and this listener split the outbound's descriptors in halves (the same cap
  // applies to the listeners' tunnels together: sidecar.ts).
  return Math.min(configured, Math.max(FD_RESERVE / 8, sharedWithTcp ? Math.floor(pairs / 2) : pairs));
}
