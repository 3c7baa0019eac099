// One log event that an attacker can trigger at will (failed handshakes, aborted streams, a CA storm) written at
// most once per interval: the first occurrence in a window is logged, the rest are counted
// (meshauth_log_lines_suppressed_total) and summed into one summary line when the window closes. Bounded work and
// bounded output whatever the rate.
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

export class RateLimitedLog {
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #event: string;
  readonly #intervalMs: number;
  #windowEndsAt = 0;
  #suppressed = 0;
  #lastMessage = '';
  #timer: NodeJS.Timeout | undefined;

  constructor(logger: Logger, metrics: Metrics, event: string, intervalMs: number) {
    this.#logger = logger;
    this.#metrics = metrics;
    this.#event = event;
    this.#intervalMs = intervalMs;
  }

  warn(fields: Readonly<Record<string, unknown>>, message: string): void {
    const now = Date.now();
    if (now >= this.#windowEndsAt) {
      this.#windowEndsAt = now + this.#intervalMs;
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
      { event: this.#event, suppressed: this.#suppressed, intervalMs: this.#intervalMs, last: this.#lastMessage },
      `${this.#suppressed} more "${this.#event}" events in the last ${this.#intervalMs} ms (log lines suppressed)`,
    );
    this.#suppressed = 0;
  }
}
