// The log of the refusals a caller can repeat at will on a public surface (a data listener, the CA's API): one
// RateLimitedLog per key, the key being the refusal's bounded metric label (its registry code, the CA's reason).
// The first BURST refusals of a key in a window are logged in full, so an occasional refusal (a misconfigured
// client, a policy change) is logged as before; the rest are counted in meshauth_log_lines_suppressed_total and
// summed in one summary line naming the key. A flood of one refusal writes a few lines per window instead of a line
// per request, and never hides the first lines of another. Counting the refusals themselves stays with the callers.
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import { RateLimitedLog } from './rate-limited-log.js';

/** Lines of one key written in full per window, by default. */
const BURST = 10;

export class RefusalLog {
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #event: string;
  readonly #keyField: string;
  readonly #intervalMs: number;
  readonly #burst: number;
  readonly #summary: Readonly<Record<string, unknown>>;
  readonly #byKey = new Map<string, RateLimitedLog>();

  /**
   * `keyField`: the field of the lines that holds the key (`code`, `reason`), also set on the summary lines, with
   * `summary`'s fields; `burst`: lines of one key written in full per window.
   */
  constructor(
    logger: Logger,
    metrics: Metrics,
    event: string,
    keyField: string,
    intervalMs: number,
    options: { readonly burst?: number; readonly summary?: Readonly<Record<string, unknown>> } = {},
  ) {
    this.#logger = logger;
    this.#metrics = metrics;
    this.#event = event;
    this.#keyField = keyField;
    this.#intervalMs = intervalMs;
    this.#burst = options.burst ?? BURST;
    this.#summary = options.summary ?? {};
  }

  /** Logs one refusal of `key` (a bounded label: one window per key), or counts it as suppressed. */
  warn(key: string, fields: Readonly<Record<string, unknown>>, message: string): void {
    let log = this.#byKey.get(key);
    if (log === undefined) {
      log = new RateLimitedLog(this.#logger, this.#metrics, this.#event, this.#intervalMs, {
        burst: this.#burst,
        summary: { ...this.#summary, [this.#keyField]: key },
      });
      this.#byKey.set(key, log);
    }
    log.warn({ ...fields, [this.#keyField]: key }, message);
  }

  /** Writes the pending summary lines now (shutdown). */
  close(): void {
    for (const log of this.#byKey.values()) log.close();
  }
}
