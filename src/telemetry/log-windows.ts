// One log line per key and interval for refusals a caller can repeat at will, the key being the caller (a peer ID, a
// client address): a caller refused hundreds of times a second gets one line per interval, and never takes the line
// of another caller's first refusal, as one shared rate-limited line would. Keys are chosen by callers, so at most
// `maxKeys` windows are kept: past it the expired ones go, then all (a few more lines, never more memory). Pure apart
// from the injected clock; counting the suppressed lines is the caller's.

export class LogWindows {
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #maxKeys: number;
  /** When the current window of each key ends, on `now`'s clock. */
  readonly #ends = new Map<string, number>();

  constructor(intervalMs: number, now: () => number, maxKeys = 1_024) {
    this.#intervalMs = intervalMs;
    this.#now = now;
    this.#maxKeys = maxKeys;
  }

  /** True when `key` has no window open: log this one, its window opens now. False: suppress it. */
  open(key: string): boolean {
    const now = this.#now();
    const ends = this.#ends.get(key);
    if (ends !== undefined && now < ends) return false;
    if (ends === undefined && this.#ends.size >= this.#maxKeys) this.#forgetExpired(now);
    this.#ends.set(key, now + this.#intervalMs);
    return true;
  }

  #forgetExpired(now: number): void {
    for (const [key, ends] of this.#ends) if (ends <= now) this.#ends.delete(key);
    if (this.#ends.size >= this.#maxKeys) this.#ends.clear();
  }
}
