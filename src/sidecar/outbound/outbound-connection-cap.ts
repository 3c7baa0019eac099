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
  tcpListeners = false,
): number {
  if (fileLimit === undefined) return configured;
  return Math.min(configured, outboundShare(fileLimit, inbound, tcpListeners));
}

/**
 * The tunnels the `outbound.tcp` listeners may hold open together: half of what the outbound's descriptors allow
 * (the HTTP outbound listener keeps the other half), two descriptors each (the app's socket and the mesh one). Any
 * local process may connect to them; without a share of the budget, 1,000 connections to one of them took every
 * descriptor of a sidecar limited to 900, and the inbound and /readyz failed with it.
 */
export function tcpOutboundCap(configured: number, fileLimit: number | undefined, inbound: InboundDescriptors): number {
  if (fileLimit === undefined) return configured;
  return Math.min(configured, outboundShare(fileLimit, inbound, true));
}

/** Connections (two descriptors each) of the outbound's descriptors, halved when TCP listeners share them. */
function outboundShare(fileLimit: number, inbound: InboundDescriptors, shared: boolean): number {
  const inboundCap = effectiveMaxConnections(inbound.maxConnections, fileLimit, inbound.appConnections);
  const left = fileLimit - inboundCap - inbound.appConnections - FD_RESERVE;
  const pairs = Math.floor(left / 2);
  return Math.max(FD_RESERVE / 8, shared ? Math.floor(pairs / 2) : pairs);
}
