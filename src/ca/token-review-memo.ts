// What the CA remembers of its TokenReviews (`--k8s-token-review`), keyed by the SHA-256 of the token's signed part
// (header and payload; the token itself is never kept). The API server's "not authenticated", for DENIAL_MEMORY_MS
// (or until the token's `exp`, if sooner): a deleted pod's token replayed in a loop costs one API-server call per that
// time instead of one per request. "Unavailable" (no verdict: the API server failing or throttling the CA), for
// UNAVAILABLE_MEMORY_MS: one pod's token sent in a loop then costs one review a second, not one per request, while
// the per-identity budget (charged only after a review passed) cannot hold it back. A review in progress: the same
// token sent again meanwhile waits for that answer instead of asking again. Nothing else is remembered (an answer
// the CA refuses, which a fix on the cluster's side can change). No I/O of its own, bounded memory.
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { type ErrorCode, MeshauthError } from '../errors/index.js';

/** Denials kept at most; past it the expired ones go, then the oldest. Under 1 KiB each (no stack kept). */
export const MAX_REMEMBERED_DENIALS = 10_000;
/**
 * How long a denial is remembered. Not until the token's `exp` (up to a year with the API server's extended token
 * expiration): the API server also answers "not authenticated" when its own lookup of the pod failed (an etcd
 * timeout), and a live pod's token must not stay refused for long after that.
 */
export const DENIAL_MEMORY_MS = 30_000;
/**
 * How long "no verdict" is remembered, from when it came: short, since it also holds for a live pod's token. Its
 * agent, retrying within it, gets the same 503 and backs off further; after the API server is back, a token is
 * refused for at most this long.
 */
export const UNAVAILABLE_MEMORY_MS = 1_000;

interface Denial {
  readonly untilMs: number;
  readonly code: ErrorCode;
  readonly message: string;
  readonly reason: string | undefined;
}

export class TokenReviewMemo {
  readonly #max: number;
  readonly #denied = new Map<string, Denial>();
  readonly #running = new Map<string, Promise<void>>();

  constructor(max = MAX_REMEMBERED_DENIALS) {
    this.#max = max;
  }

  /** The refusal the API server gave `token` before, while it is remembered at `nowMs`. */
  denial(token: string, nowMs: number): MeshauthError | undefined {
    const key = keyOf(token);
    const denial = this.#denied.get(key);
    if (denial === undefined) return undefined;
    if (denial.untilMs > nowMs) {
      return new MeshauthError(
        denial.code,
        denial.message,
        denial.reason === undefined ? {} : { reason: denial.reason },
      );
    }
    this.#denied.delete(key);
    return undefined;
  }

  /**
   * Runs `ask` for `token`, or joins the review already running for it. `ask` resolves to undefined (confirmed)
   * or to the denial to remember (for DENIAL_MEMORY_MS, at most until `expiresAtMs`), which is then thrown; what it
   * throws is not remembered.
   */
  review(
    token: string,
    expiresAtMs: number,
    nowMs: number,
    ask: () => Promise<MeshauthError | undefined>,
  ): Promise<void> {
    const key = keyOf(token);
    const running = this.#running.get(key);
    if (running !== undefined) return running;
    // A review that fails slowly (an API server timing out) must not leave a memory that has already lapsed.
    const startedAt = performance.now();
    const started = ask()
      .then(
        (denied) => {
          if (denied === undefined) return;
          this.#remember(key, denied, Math.min(expiresAtMs, nowMs + DENIAL_MEMORY_MS), nowMs);
          throw denied;
        },
        (error: unknown) => {
          if (error instanceof MeshauthError && error.code === 'MESHAUTH_ERR_CA_UNAVAILABLE') {
            const answeredMs = nowMs + (performance.now() - startedAt);
            this.#remember(key, error, Math.min(expiresAtMs, answeredMs + UNAVAILABLE_MEMORY_MS), answeredMs);
          }
          throw error;
        },
      )
      .finally(() => this.#running.delete(key));
    this.#running.set(key, started);
    return started;
  }

  get size(): number {
    return this.#denied.size;
  }

  #remember(key: string, refusal: MeshauthError, untilMs: number, nowMs: number): void {
    if (untilMs <= nowMs) return;
    const denial: Denial = { untilMs, code: refusal.code, message: refusal.message, reason: refusal.reason };
    if (this.#denied.size >= this.#max) {
      for (const [k, d] of this.#denied) if (d.untilMs <= nowMs) this.#denied.delete(k);
    }
    // Still full (a flood of distinct revoked tokens): the oldest denial goes; that token costs one review again.
    while (this.#denied.size >= this.#max) {
      const oldest = this.#denied.keys().next();
      if (oldest.done === true) break;
      this.#denied.delete(oldest.value);
    }
    this.#denied.set(key, denial);
  }
}

/**
 * The token's signed part (header and payload): an ES256 signature has a second valid form for the same payload (s
 * and n − s), and a verifier that accepts both would see two tokens where the memo must see one.
 */
function keyOf(token: string): string {
  const signature = token.lastIndexOf('.');
  return createHash('sha256')
    .update(signature < 0 ? token : token.slice(0, signature))
    .digest('base64url');
}
