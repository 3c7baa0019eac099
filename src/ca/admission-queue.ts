// Load shedding for the CA: a bounded admission queue in front of signing. At most `maxConcurrent` requests sign
// at once and at most `maxQueue` more wait; past that a request is refused at once with a Retry-After computed from
// the queue depth and the measured signing rate, so a cluster-wide restart meets fast 429s instead of timeouts.
// Pure bookkeeping: the clock comes in as an argument (no timers), so every boundary is unit-tested.
import { nonNegativeInteger, positiveInteger } from './count-options.js';

/** Shortest and longest Retry-After the CA sends (whole seconds, the form Retry-After takes). */
export const MIN_RETRY_AFTER_SECONDS = 1;
export const MAX_RETRY_AFTER_SECONDS = 30;
/** Weight of the newest sample in the signing-rate average (exponentially weighted). */
const RATE_SMOOTHING = 0.2;
/** Assumed signing throughput before any signature was measured (one core signs > 1,000 P-256 leaves/s). */
const INITIAL_SIGNINGS_PER_SECOND = 500;

export interface AdmissionOptions {
  /** Requests signing at the same time (typically the number of signing workers × a small factor). */
  readonly maxConcurrent: number;
  /** Requests allowed to wait for a slot; the next one is refused. */
  readonly maxQueue: number;
  /**
   * Longest expected wait (ms) at the measured signing rate: a request that would wait longer is refused even below
   * maxQueue, so a client is told to come back before its own timeout (the agent's is 10 s) fires and it retries
   * on top of a request still queued. Default 5 s.
   */
  readonly maxWaitMs?: number;
  /**
   * Signing requests that may be ahead of a refused client beyond this queue: the server's open connections, most
   * of them still in their TLS handshake during a storm (none reached the queue yet). Retry-After counts them, so
   * a refused client is not sent back into the same crowd. Default: none.
   */
  readonly backlog?: () => number;
}

interface Waiter {
  /** Takes the slot just freed and lets the request go on. */
  readonly start: () => void;
}

export type Admission =
  | { readonly admitted: true; readonly release: () => void; readonly waited: Promise<void> }
  | { readonly admitted: false; readonly retryAfterSeconds: number };

export class AdmissionQueue {
  readonly #maxConcurrent: number;
  readonly #maxQueue: number;
  readonly #maxWaitMs: number;
  readonly #backlog: () => number;
  /** Requests waiting for a slot, oldest first. */
  readonly #waiting = new Set<Waiter>();
  #active = 0;
  /** Completed signings per second, smoothed. */
  #rate = INITIAL_SIGNINGS_PER_SECOND;
  #windowStart = -1;
  #windowCount = 0;

  constructor(options: AdmissionOptions) {
    this.#maxConcurrent = positiveInteger(options.maxConcurrent, 'maxConcurrent');
    this.#maxQueue = nonNegativeInteger(options.maxQueue, 'maxQueue');
    this.#maxWaitMs = options.maxWaitMs ?? 5000;
    this.#backlog = options.backlog ?? (() => 0);
  }

  /** Requests signing plus requests waiting. */
  get depth(): number {
    return this.#active + this.#waiting.size;
  }

  get signingsPerSecond(): number {
    return this.#rate;
  }

  /**
   * Admits a request (it may have to wait: await `waited`, then call `release` exactly once when done, even on
   * failure) or refuses it with the seconds after which the queue should have drained.
   */
  admit(): Admission {
    if (this.#active < this.#maxConcurrent) {
      this.#active += 1;
      return { admitted: true, release: this.#releaser(undefined), waited: Promise.resolve() };
    }
    const expectedWaitMs = ((this.#waiting.size + 1) * 1000) / Math.max(this.#rate, 1);
    if (this.#waiting.size >= this.#maxQueue || expectedWaitMs > this.#maxWaitMs) {
      return { admitted: false, retryAfterSeconds: this.retryAfterSeconds() };
    }
    let waiter: Waiter | undefined;
    const waited = new Promise<void>((resolve) => {
      waiter = {
        start: () => {
          this.#active += 1;
          resolve();
        },
      };
      this.#waiting.add(waiter);
    });
    return { admitted: true, release: this.#releaser(waiter), waited };
  }

  /** Seconds until the queue (or the backlog, if larger) should have drained at the measured rate, within [1, 30]. */
  retryAfterSeconds(): number {
    const ahead = Math.max(this.depth, this.#backlog());
    const seconds = Math.ceil(ahead / Math.max(this.#rate, 1));
    return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(MIN_RETRY_AFTER_SECONDS, seconds));
  }

  /**
   * Records one completed signing at `nowMs`, before its release (feeds the rate that Retry-After and the expected
   * wait are computed from). Only completions while every slot is taken count: they measure how fast the CA signs,
   * where those of a CA with slots to spare measure how fast it was asked, and a CA renewing a few SVIDs a second
   * would come to believe it signs a few a second and refuse the next burst it could take at once, with a Retry-After
   * of tens of seconds. A window is a run of such completions; one the CA leaves before 250 ms passed is dropped.
   */
  recordCompletion(nowMs: number): void {
    if (this.#active < this.#maxConcurrent) {
      this.#windowStart = -1;
      this.#windowCount = 0;
      return;
    }
    if (this.#windowStart < 0) this.#windowStart = nowMs;
    this.#windowCount += 1;
    const elapsed = nowMs - this.#windowStart;
    // Whole windows of at least 250 ms: shorter ones are too noisy to be a rate.
    if (elapsed >= 250) {
      const sample = (this.#windowCount * 1000) / elapsed;
      this.#rate = this.#rate * (1 - RATE_SMOOTHING) + sample * RATE_SMOOTHING;
      this.#windowStart = nowMs;
      this.#windowCount = 0;
    }
  }

  /**
   * Ends an admission: a started one frees its slot for the oldest waiter; one released while still waiting (its
   * client left) only gives up its place, since it never held a slot.
   */
  #releaser(waiter: Waiter | undefined): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (waiter !== undefined && this.#waiting.delete(waiter)) return;
      this.#active -= 1;
      const next: Waiter | undefined = this.#waiting.values().next().value;
      if (next === undefined) return;
      this.#waiting.delete(next);
      next.start();
    };
  }
}
