// The `peer_id` label values of one process's registry (meshauth_requests_total, meshauth_tcp_connections_total):
// the first `max` distinct peer SPIFFE IDs get their own value, every later one is counted under `other`. A peer
// ID is authenticated but not bounded: each workload of the trust domain (per-pod IDs, thousands of services) would
// otherwise add its series for good, to the sidecar's memory and to every scrape.
import type { Logger } from './logger.js';

/** The `peer_id` value of the peers past the bound; never a SPIFFE ID (those start with `spiffe://`). */
export const PEER_ID_OVERFLOW = 'other';

/** Distinct `peer_id` values per process unless configured (inbound.limits.maxPeerIdLabels). */
export const DEFAULT_MAX_PEER_ID_LABELS = 256;

export class PeerIdLabels {
  readonly #seen = new Set<string>();
  #max = DEFAULT_MAX_PEER_ID_LABELS;
  #overflowLogged = false;

  get max(): number {
    return this.#max;
  }

  /** The bound; IDs already given a value keep it (their series exist) even past a lower bound. */
  setMax(max: number): void {
    this.#max = max;
  }

  /**
   * The label value for `peerId`: the ID itself while the bound allows, else PEER_ID_OVERFLOW. The first peer folded
   * is logged once, with the bound and the key that raises it: from then on, per-peer series are missing.
   */
  labelOf(peerId: string, logger: Logger): string {
    // No peer (an external client, an egress tunnel) is one value, not a peer: it takes no place.
    if (peerId === '' || this.#seen.has(peerId)) return peerId;
    if (this.#seen.size < this.#max) {
      this.#seen.add(peerId);
      return peerId;
    }
    if (!this.#overflowLogged) {
      this.#overflowLogged = true;
      logger.warn(
        { event: 'peer_id_labels_full', max: this.#max, peer: peerId },
        `more than ${this.#max} peer SPIFFE IDs: further peers are counted under peer_id="${PEER_ID_OVERFLOW}" (inbound.limits.maxPeerIdLabels raises the bound)`,
      );
    }
    return PEER_ID_OVERFLOW;
  }
}
