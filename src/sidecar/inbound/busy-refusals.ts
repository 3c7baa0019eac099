// Reporting of the requests refused because their caller already has its most requests waiting for the app
// (app-forwarder.ts, MESHAUTH_ERR_UPSTREAM_BUSY). Each is counted as any rejection; the log line is written for the
// first refusal of a caller in each interval only (LogWindows), the others counted in
// meshauth_log_lines_suppressed_total. A caller past its bound sends hundreds a second, and the code's shared lines
// (RefusalLog) would otherwise go to one caller while another's first refusal went unlogged.
import type { MeshauthError } from '../../errors/index.js';
import { LogWindows, type Metrics } from '../../telemetry/index.js';
import type { DataPlaneTelemetry } from '../data-plane-telemetry.js';
import type { Exchange } from '../pipeline/exchange.js';

export class BusyRefusals {
  readonly #telemetry: DataPlaneTelemetry;
  readonly #metrics: Metrics;
  readonly #windows: LogWindows;

  constructor(telemetry: DataPlaneTelemetry, metrics: Metrics, intervalMs: number, now: () => number) {
    this.#telemetry = telemetry;
    this.#metrics = metrics;
    this.#windows = new LogWindows(intervalMs, now);
  }

  /** Counts the refusal of `exchange` (its caller `key`), and logs it unless `key` was logged within the interval. */
  report(key: string, exchange: Exchange, error: MeshauthError): void {
    const telemetry = this.#telemetry;
    if (this.#windows.open(key)) {
      telemetry.rejected(exchange.peerId, error, exchange.startedAt);
      return;
    }
    telemetry.completed(exchange.peerId, error.status, exchange.startedAt);
    this.#metrics.requestsRejected.inc({ direction: telemetry.direction, code: error.code });
    this.#metrics.logLinesSuppressed.inc({ event: 'request_rejected' });
  }
}
