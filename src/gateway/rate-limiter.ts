// A fixed-window counter per client IP (the sign-in callback: code exchanges cost the provider and us). Bounded: past
// MAX_CLIENTS counted clients the least recently seen one is forgotten, never the whole table, and a client over its
// limit is kept apart until the window ends, so new source keys (cheap IPv6 /64s) cannot buy a held client a fresh
// allowance. Pure apart from the injected clock.
const MAX_CLIENTS = 10_000;

export class RateLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  #windowStart = 0;
  /** Clients under their limit this window → attempts; in the order last seen (the first is forgotten first). */
  readonly #counts = new Map<string, number>();
  /** Clients over their limit this window: refused until it ends. */
  readonly #held = new Set<string>();

  constructor(limit: number, windowMs = 60_000) {
    this.#limit = limit;
    this.#windowMs = windowMs;
  }

  /** Counts one attempt; false when the client is over its limit for the current window. */
  take(client: string, nowMs: number): boolean {
    if (nowMs - this.#windowStart >= this.#windowMs) {
      this.#windowStart = nowMs;
      this.#counts.clear();
      this.#held.clear();
    }
    if (this.#held.has(client)) return false;
    const count = (this.#counts.get(client) ?? 0) + 1;
    this.#counts.delete(client);
    if (count > this.#limit) {
      // Only clients that used a whole allowance get here, so holding them costs an attacker that much per entry;
      // past the bound the oldest hold goes first.
      if (this.#held.size >= MAX_CLIENTS) this.#held.delete(this.#held.values().next().value as string);
      this.#held.add(client);
      return false;
    }
    this.#counts.set(client, count);
    // Forgetting a client under its limit gives it at most a new allowance, as a new address would have.
    if (this.#counts.size > MAX_CLIENTS) this.#counts.delete(this.#counts.keys().next().value as string);
    return true;
  }

  /** Seconds until the current window ends (Retry-After). */
  retryAfterSeconds(nowMs: number): number {
    return Math.max(1, Math.ceil((this.#windowStart + this.#windowMs - nowMs) / 1000));
  }
}
