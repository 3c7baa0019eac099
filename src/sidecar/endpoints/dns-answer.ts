// What of a DNS answer becomes endpoints. Pure. The answer comes from whatever the pod's resolver trusts, so it is
// bounded here: addresses no workload listens on are dropped (the sidecar would otherwise offer its client
// certificate to them), a huge record set is cut to a size the balancer and the session table are meant for, and
// records without a TTL (Node reports TTLs for the first 256 only) do not turn the refresh into a query a second.
import { isWorkloadAddress } from '../../platform/address-kinds.js';

/** Endpoints kept per name: more than any Service's ready pods behind one name in practice. */
export const MAX_ENDPOINTS_PER_NAME = 256;

/** The TTL taken when no record of the answer carries a usable one (as getaddrinfo's fixed refresh). */
export const DEFAULT_TTL_SECONDS = 5;

/** The smallest TTL among records that carry one (a finite number); DEFAULT_TTL_SECONDS when none does. */
export function smallestTtl(ttls: readonly (number | undefined)[]): number {
  let smallest = Number.POSITIVE_INFINITY;
  for (const ttl of ttls)
    if (typeof ttl === 'number' && Number.isFinite(ttl) && ttl >= 0) smallest = Math.min(smallest, ttl);
  return Number.isFinite(smallest) ? smallest : DEFAULT_TTL_SECONDS;
}

export interface UsableAddresses {
  /** Distinct, dialable, at most MAX_ENDPOINTS_PER_NAME, in answer order. */
  readonly addresses: readonly string[];
  /** Dropped as not dialable (distinct). */
  readonly ignored: readonly string[];
  /** Dialable addresses past the cap. */
  readonly overCap: number;
}

export function usableAddresses(answer: readonly string[]): UsableAddresses {
  const addresses: string[] = [];
  const ignored: string[] = [];
  const seen = new Set<string>();
  let overCap = 0;
  for (const address of answer) {
    if (seen.has(address)) continue;
    seen.add(address);
    if (!isWorkloadAddress(address)) ignored.push(address);
    else if (addresses.length < MAX_ENDPOINTS_PER_NAME) addresses.push(address);
    else overCap += 1;
  }
  return { addresses, ignored, overCap };
}
