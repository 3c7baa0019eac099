// A fixed-window counter per client IP (the sign-in callback: code exchanges cost the provider and us). Bounded:
// past MAX_CLIENTS tracked IPs the table is reset rather than grown. Pure apart from the injected clock.
const MAX_CLIENTS = 10_000;

export class RateLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  #windowStart = 0;
  readonly #counts = new Map<string, number>();

  constructor(limit: number, windowMs = 60_000) {
    this.#limit = limit;
    this.#windowMs = windowMs;
  }

  /** Counts one attempt; false when the client is over its limit for the current window. */
  take(client: string, nowMs: number): boolean {
    if (nowMs - this.#windowStart >= this.#windowMs || this.#counts.size >= MAX_CLIENTS) {
      this.#windowStart = nowMs;
      this.#counts.clear();
    }
    const count = (this.#counts.get(client) ?? 0) + 1;
    this.#counts.set(client, count);
    return count <= this.#limit;
  }

  /** Seconds until the current window ends (Retry-After). */
  retryAfterSeconds(nowMs: number): number {
    return Math.max(1, Math.ceil((this.#windowStart + this.#windowMs - nowMs) / 1000));
  }
}
