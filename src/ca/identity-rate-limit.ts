// A per-identity limit on X509-SVID issuance (POST /v1/svid), after the caller is authenticated: one workload that
// renews in a loop (hundreds of CSRs a second with one valid SVID, or a service-account token replayed) gets 429
// MESHAUTH_ERR_CA_RATE_LIMITED with Retry-After, while every other identity is signed as before. The global queue
// (load-shedding.ts) protects the CA; this keeps one identity from taking the whole queue from the others.
// JWT-SVIDs (POST /v1/token) have a bucket set of their own with the same numbers (identity-limit.ts): all replicas
// of a workload fetching a 5-minute token for each of their audiences stay far below 50 a second.
//
// A token bucket per SPIFFE ID. The defaults are far above anything a legitimate fleet asks for, because one SPIFFE
// ID is shared by every replica of a workload (all pods of a service account): an agent renews once per half-life
// (a 1 h SVID: every 30 min; the shortest SVIDs in use, 3 s, every 1.5 s), and a bootstrap retries with backoff.
// 50 a second sustained is 75 agents of one identity renewing 3 s SVIDs, or 90,000 replicas renewing 1 h ones;
// the burst of 200 lets a rollout of 200 replicas start at once, and a larger one is spread over seconds (each agent
// honours Retry-After), never failed. A flood of 1,000 a second from one identity is cut to 50.
// Join tokens are not limited here: each is single-use, so a flood with one spends it once.

/** CSRs one identity may have signed at once before the sustained rate applies. */
export const IDENTITY_BURST = 200;
/** CSRs per second one identity may have signed, sustained. */
export const IDENTITY_RATE_PER_SECOND = 50;
/** Identities tracked before idle buckets (full again) are dropped; bounded memory whatever the callers. */
const MAX_TRACKED = 100_000;

interface Bucket {
  tokens: number;
  at: number;
}

export type Admission = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterSeconds: number };

export class IdentityRateLimit {
  readonly #burst: number;
  readonly #ratePerMs: number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(burst = IDENTITY_BURST, ratePerSecond = IDENTITY_RATE_PER_SECOND) {
    this.#burst = burst;
    this.#ratePerMs = ratePerSecond / 1000;
  }

  /** Takes one CSR from `identity`'s bucket at `nowMs` (the CA's clock). */
  take(identity: string, nowMs: number): Admission {
    let bucket = this.#buckets.get(identity);
    if (bucket === undefined) {
      if (this.#buckets.size >= MAX_TRACKED) this.#sweep(nowMs);
      bucket = { tokens: this.#burst, at: nowMs };
      this.#buckets.set(identity, bucket);
    } else {
      // A clock set back refills nothing (and takes nothing back).
      bucket.tokens = Math.min(this.#burst, bucket.tokens + Math.max(0, nowMs - bucket.at) * this.#ratePerMs);
      bucket.at = Math.max(bucket.at, nowMs);
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true };
    }
    return this.#refusal(bucket.tokens);
  }

  /**
   * Whether `identity` has a CSR left at `nowMs`, taking nothing: the check before a service-account token's
   * TokenReview, whose request is charged (`take`) only once the API server confirmed the token.
   */
  peek(identity: string, nowMs: number): Admission {
    const bucket = this.#buckets.get(identity);
    if (bucket === undefined) return { allowed: true };
    const tokens = Math.min(this.#burst, bucket.tokens + Math.max(0, nowMs - bucket.at) * this.#ratePerMs);
    return tokens >= 1 ? { allowed: true } : this.#refusal(tokens);
  }

  #refusal(tokens: number): Admission {
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - tokens) / this.#ratePerMs / 1000)) };
  }

  /** Drops buckets that have refilled (idle identities): they start full again if they come back. */
  #sweep(nowMs: number): void {
    for (const [identity, bucket] of this.#buckets) {
      if (bucket.tokens + (nowMs - bucket.at) * this.#ratePerMs >= this.#burst) this.#buckets.delete(identity);
    }
    // Every bucket busy (only an enormous fleet): forget them all rather than grow; the limit is lost for a moment.
    if (this.#buckets.size >= MAX_TRACKED) this.#buckets.clear();
  }
}
