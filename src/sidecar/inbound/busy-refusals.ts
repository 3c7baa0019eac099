// Reporting of the requests refused because their caller already has its most requests waiting for the app
// (app-forwarder.ts, MESHAUTH_ERR_UPSTREAM_BUSY). Each is counted as any rejection; the log line is written for the
// first refusal of a caller in each interval only, the others counted in meshauth_log_lines_suppressed_total. A
// caller past its bound sends hundreds a second, and the code's shared lines (RefusalLog) would otherwise go to one
// caller while another's first refusal went unlogged. At most MAX_CALLERS windows are kept.
import type { MeshauthError } from '../../errors/index.js';
import type { Metrics } from '../../telemetry/index.js';
import type { DataPlaneTelemetry } from '../data-plane-telemetry.js';
import type { Exchange } from '../pipeline/exchange.js';

/** Callers tracked at most; past it the expired windows go, then all (a few more lines, never more memory). */
const MAX_CALLERS = 1_024;

export class BusyRefusals {
  readonly #telemetry: DataPlaneTelemetry;
  readonly #metrics: Metrics;
  readonly #intervalMs: number;
  readonly #now: () => number;
  /** When the current window of each caller (shareKey) ends, on `now`'s clock. */
  readonly #windowEnds = new Map<string, number>();

  constructor(telemetry: DataPlaneTelemetry, metrics: Metrics, intervalMs: number, now: () => number) {
    this.#telemetry = telemetry;
    this.#metrics = metrics;
    this.#intervalMs = intervalMs;
    this.#now = now;
  }

  /** Counts the refusal of `exchange` (its caller `key`), and logs it unless `key` was logged within the interval. */
  report(key: string, exchange: Exchange, error: MeshauthError): void {
    const now = this.#now();
    const windowEnds = this.#windowEnds.get(key);
    if (windowEnds !== undefined && now < windowEnds) {
      const telemetry = this.#telemetry;
      telemetry.completed(exchange.peerId, error.status, exchange.startedAt);
      this.#metrics.requestsRejected.inc({ direction: telemetry.direction, code: error.code });
      this.#metrics.logLinesSuppressed.inc({ event: 'request_rejected' });
      return;
    }
    if (windowEnds === undefined && this.#windowEnds.size >= MAX_CALLERS) this.#forgetExpired(now);
    this.#windowEnds.set(key, now + this.#intervalMs);
    this.#telemetry.rejected(exchange.peerId, error, exchange.startedAt);
  }

  #forgetExpired(now: number): void {
    for (const [key, ends] of this.#windowEnds) if (ends <= now) this.#windowEnds.delete(key);
    if (this.#windowEnds.size >= MAX_CALLERS) this.#windowEnds.clear();
  }
}
