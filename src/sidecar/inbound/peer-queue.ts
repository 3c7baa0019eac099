// Per-caller admission to the app hop (app-forwarder.ts): how many requests of each caller are in flight at the app,
// and its further requests waiting for one of its own to finish, oldest first. Both are bounded per caller. Pure:
// no clock, no socket; the caller of `enter` dispatches, queues or refuses as told.
import { addTo } from '../../platform/counts.js';

/** What `enter` decided for a request. */
export type Admission = 'run' | 'wait' | 'full';

export class PeerQueue<T> {
  readonly #maxInFlight: number;
  readonly #maxWaiting: number;
  /** In flight per caller key (absent: none). */
  readonly #inFlight = new Map<string, number>();
  /** Waiting per caller key, oldest first (absent: none). */
  readonly #waiting = new Map<string, T[]>();

  constructor(maxInFlight: number, maxWaiting: number) {
    this.#maxInFlight = maxInFlight;
    this.#maxWaiting = maxWaiting;
  }

  /**
   * `run`: the caller has room in flight and `item` now counts there; `wait`: queued behind the caller's others;
   * `full`: the caller already has its most in flight and waiting, and nothing was recorded.
   */
  enter(key: string, item: T): Admission {
    const inFlight = this.#inFlight.get(key) ?? 0;
    if (inFlight < this.#maxInFlight) {
      this.#inFlight.set(key, inFlight + 1);
      return 'run';
    }
    const queue = this.#waiting.get(key);
    if ((queue?.length ?? 0) >= this.#maxWaiting) return 'full';
    if (queue === undefined) this.#waiting.set(key, [item]);
    else queue.push(item);
    return 'wait';
  }

  /**
   * One of the caller's requests in flight ended. Returns its oldest waiting request, which now counts in flight in
   * the freed place, or undefined.
   */
  release(key: string): T | undefined {
    const queue = this.#waiting.get(key);
    const next = queue?.shift();
    if (queue?.length === 0) this.#waiting.delete(key);
    if (next !== undefined) return next;
    addTo(this.#inFlight, key, -1);
    return undefined;
  }

  /** A waiting request left before its turn (its caller reset it, say): it is forgotten. No-op once it runs. */
  leave(key: string, item: T): void {
    const queue = this.#waiting.get(key);
    const at = queue?.indexOf(item) ?? -1;
    if (queue === undefined || at === -1) return;
    queue.splice(at, 1);
    if (queue.length === 0) this.#waiting.delete(key);
  }

  /** Requests of `key` in flight and waiting. */
  count(key: string): { readonly inFlight: number; readonly waiting: number } {
    return { inFlight: this.#inFlight.get(key) ?? 0, waiting: this.#waiting.get(key)?.length ?? 0 };
  }
}
