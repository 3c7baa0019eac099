// One log event that an attacker can trigger at will (failed handshakes, aborted streams, a CA storm) written at
// most once (or `burst` times) per interval: the first occurrences in a window are logged, the rest are counted
// (meshauth_log_lines_suppressed_total) and summed into one summary line when the window closes. Bounded work and
// bounded output whatever the rate.
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

export interface RateLimitedLogOptions {
  /** Lines written in full per window (default 1). */
  readonly burst?: number;
  /** Fields of the summary line besides the count: what the suppressed lines had in common. */
  readonly summary?: Readonly<Record<string, unknown>>;
}

export class RateLimitedLog {
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #event: string;
  readonly #intervalMs: number;
  readonly #burst: number;
  readonly #summary: Readonly<Record<string, unknown>>;
  #windowEndsAt = 0;
  #written = 0;
  #suppressed = 0;
  #lastMessage = '';
  #timer: NodeJS.Timeout | undefined;

  constructor(
    logger: Logger,
    metrics: Metrics,
    event: string,
    intervalMs: number,
    options: RateLimitedLogOptions = {},
  ) {
    this.#logger = logger;
    this.#metrics = metrics;
    this.#event = event;
    this.#intervalMs = intervalMs;
    this.#burst = options.burst ?? 1;
    this.#summary = options.summary ?? {};
  }

  warn(fields: Readonly<Record<string, unknown>>, message: string): void {
    const now = Date.now();
    if (now >= this.#windowEndsAt) {
      this.#windowEndsAt = now + this.#intervalMs;
      this.#written = 0;
    }
    if (this.#written < this.#burst) {
      this.#written++;
      this.#logger.warn({ event: this.#event, ...fields }, message);
      return;
    }
    this.#suppressed++;
    this.#lastMessage = message;
    this.#metrics.logLinesSuppressed.inc({ event: this.#event });
    this.#timer ??= setTimeout(() => this.#flush(), this.#windowEndsAt - now).unref();
  }

  /** Writes the pending summary line now (shutdown). */
  close(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#flush();
  }

  #flush(): void {
    this.#timer = undefined;
    if (this.#suppressed === 0) return;
    this.#logger.warn(
      {
        event: this.#event,
        ...this.#summary,
        suppressed: this.#suppressed,
        intervalMs: this.#intervalMs,
        last: this.#lastMessage,
      },
      `${this.#suppressed} more "${this.#event}" events in the last ${this.#intervalMs} ms (log lines suppressed)`,
    );
    this.#suppressed = 0;
  }
}
