// Per-request accounting of the data path: `meshauth_requests_total`, the duration histogram and, for
// rejections, `meshauth_requests_rejected_total` plus one log line (rate-limited per code, RefusalLog). Count cells are
// cached per label set so the success path costs two map lookups, an addition and a bucket search: no label object,
// no label hashing, no log (Metrics.requestCounts, Metrics.requestDuration).
import { performance } from 'node:perf_hooks';
import type { Counter } from 'prom-client';
import type { MeshauthError } from '../errors/index.js';
import { h2SessionErrorReason } from '../platform/index.js';
import {
  type CountCell,
  type DurationSeries,
  type Logger,
  type Metrics,
  RateLimitedLog,
  RefusalLog,
  statusLabel,
} from '../telemetry/index.js';

/** Caller aborts are routine (a cancelled download) and attacker-driven alike: one log line per this interval. */
const ABORT_LOG_INTERVAL_MS = 10_000;
/**
 * A caller can repeat a refused request in a loop (a bad token, a forged passport, a host with no route): its first
 * lines per code per this interval, every refusal still counted in meshauth_requests_rejected_total. A policy deny
 * keeps its own audit line per request besides (policy-authorizer.ts).
 */
const REJECTION_LOG_INTERVAL_MS = 10_000;

export type Direction = 'inbound' | 'outbound' | 'external';

export class DataPlaneTelemetry {
  readonly direction: Direction;
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  /** By `peer_id` label value (bounded: Metrics.peerIds), then status. */
  readonly #byPeer = new Map<string, Map<number, CountCell>>();
  readonly #duration: DurationSeries;
  readonly #abortLog: RateLimitedLog;
  readonly #idleLog: RateLimitedLog;
  readonly #protocolLog: RateLimitedLog;
  readonly #strippedLog: RateLimitedLog;
  readonly #resetFloodLog: RateLimitedLog;
  readonly #sessionErrorLog: RateLimitedLog;
  readonly #rejectedLog: RefusalLog;
  #strippedCount: ReturnType<Counter<'direction'>['labels']> | undefined;

  constructor(direction: Direction, metrics: Metrics, logger: Logger) {
    this.direction = direction;
    this.#metrics = metrics;
    this.#logger = logger;
    this.#duration = metrics.requestDuration.series(direction);
    this.#abortLog = new RateLimitedLog(logger, metrics, 'client_aborted', ABORT_LOG_INTERVAL_MS);
    this.#idleLog = new RateLimitedLog(logger, metrics, 'stream_idle_timeout', ABORT_LOG_INTERVAL_MS);
    this.#protocolLog = new RateLimitedLog(logger, metrics, 'protocol_error', ABORT_LOG_INTERVAL_MS);
    this.#strippedLog = new RateLimitedLog(logger, metrics, 'identity_headers_stripped', ABORT_LOG_INTERVAL_MS);
    this.#resetFloodLog = new RateLimitedLog(logger, metrics, 'premature_reset', ABORT_LOG_INTERVAL_MS);
    this.#sessionErrorLog = new RateLimitedLog(logger, metrics, 'h2_session_error', ABORT_LOG_INTERVAL_MS);
    this.#rejectedLog = new RefusalLog(logger, metrics, 'request_rejected', 'code', REJECTION_LOG_INTERVAL_MS);
  }

  /** Writes the summaries of log lines held back in the current windows (the listener is closing). */
  close(): void {
    for (const log of [
      this.#abortLog,
      this.#idleLog,
      this.#protocolLog,
      this.#strippedLog,
      this.#resetFloodLog,
      this.#sessionErrorLog,
      this.#rejectedLog,
    ]) {
      log.close();
    }
  }

  /**
   * A request arrived with identity headers only the sidecar may set; they were removed and the request went on.
   * A peer or client can send them on every request, so the log line is rate-limited like aborts.
   */
  identityHeadersStripped(peerId: string): void {
    this.#strippedCount ??= this.#metrics.identityHeadersStripped.labels(this.direction);
    this.#strippedCount.inc();
    this.#strippedLog.warn(
      { direction: this.direction, reason: 'identity_headers_stripped', peer: peerId === '' ? undefined : peerId },
      'identity headers from the caller removed: only the sidecar sets them',
    );
  }

  /**
   * Counts a request whose response headers were just sent; `startedAt` is a performance.now() value, and so is
   * `headAt`, when the head arrived, for a head held until its first body byte (the duration ends at its arrival).
   */
  completed(peerId: string, status: number, startedAt: number, headAt: number = performance.now()): void {
    // Keyed by the label value (a found key is its own label): a peer past the bound shares `other`'s entry and adds
    // none of its own.
    let label = peerId;
    let byStatus = this.#byPeer.get(peerId);
    if (byStatus === undefined) {
      label = this.#metrics.peerIds.labelOf(peerId, this.#logger);
      byStatus = this.#byPeer.get(label);
      if (byStatus === undefined) {
        byStatus = new Map();
        this.#byPeer.set(label, byStatus);
      }
    }
    let cell = byStatus.get(status);
    if (cell === undefined) {
      cell = this.#metrics.requestCounts.cell({ direction: this.direction, peer_id: label, code: statusLabel(status) });
      byStatus.set(status, cell);
    }
    cell.pending++;
    this.#duration.observe((headAt - startedAt) / 1000);
  }

  /** Counts and logs a request the sidecar answered with an error of its own. */
  rejected(peerId: string, error: MeshauthError, startedAt: number, detail?: Readonly<Record<string, unknown>>): void {
    this.completed(peerId, error.status, startedAt);
    this.#metrics.requestsRejected.inc({ direction: this.direction, code: error.code });
    this.#rejectedLog.warn(
      error.code,
      { ...this.#rejectionFields(peerId, error), ...detail, cause: causeText(error.cause) },
      `request rejected: ${error.message}`,
    );
  }

  /**
   * A rejection decided after the caller left (nothing was answered, nothing counted as a request): its one log line,
   * so that a refused token is logged whether or not its sender waited for the 401.
   */
  rejectedUnanswered(peerId: string, error: MeshauthError): void {
    this.#rejectedLog.warn(
      error.code,
      { ...this.#rejectionFields(peerId, error), answered: false },
      `request rejected after the caller left: ${error.message}`,
    );
  }

  #rejectionFields(peerId: string, error: MeshauthError): Record<string, unknown> {
    return {
      direction: this.direction,
      code: error.code,
      status: error.status,
      reason: error.reason,
      peer: peerId === '' ? undefined : peerId,
      ...error.detail,
    };
  }

  /** The caller reset or closed before the exchange completed; the upstream exchange was aborted with it. */
  aborted(peerId: string): void {
    this.#metrics.streamsReset.inc({ direction: this.direction, reason: 'client_aborted' });
    this.#abortLog.warn(
      { direction: this.direction, reason: 'client_aborted', peer: peerId === '' ? undefined : peerId },
      'exchange aborted: the caller went away before it completed',
    );
  }

  /**
   * An HTTP/2 stream reset with PROTOCOL_ERROR before the exchange completed: nghttp2 resets a stream whose frames
   * break HTTP/2 (a body longer or shorter than its content-length), or the caller says ours did. Not a caller that
   * went away; the upstream exchange was aborted with it.
   */
  protocolReset(peerId: string): void {
    this.#metrics.streamsReset.inc({ direction: this.direction, reason: 'protocol_error' });
    this.#protocolLog.warn(
      { direction: this.direction, reason: 'protocol_error', peer: peerId === '' ? undefined : peerId },
      'exchange reset: its HTTP/2 stream broke the protocol',
    );
  }

  /** An exchange reset because nothing moved either way for the stream idle timeout. */
  idleStream(): void {
    this.#metrics.streamsReset.inc({ direction: this.direction, reason: 'stream_idle_timeout' });
    this.#idleLog.warn({ direction: this.direction, reason: 'stream_idle_timeout' }, 'idle exchange reset');
  }

  /** An HTTP/2 session closed because its peer cancelled most of its streams before their answer (rapid reset). */
  prematureResets(peerId: string, streams: number, resets: number): void {
    this.#metrics.connectionsRejected.inc({ direction: this.direction, reason: 'premature_reset' });
    this.#resetFloodLog.warn(
      {
        direction: this.direction,
        reason: 'premature_reset',
        peer: peerId === '' ? undefined : peerId,
        streams,
        resets,
      },
      'session closed: the peer reset most of its streams before their response',
    );
  }

  /**
   * An HTTP/2 session node:http2 tore down with an error (a protocol breach, or a CONTINUATION, PING or SETTINGS
   * flood nghttp2 detects), under the gateway's bounded reasons. A session emits 'error' once, so this is one count
   * and at most one line per session; the line is rate-limited because a flooding client can open sessions in a
   * loop (the suppressed ones are summed in meshauth_log_lines_suppressed_total and a summary line).
   */
  sessionError(peerId: string, error: Error & { code?: string }): void {
    const reason = h2SessionErrorReason(error);
    this.#metrics.connectionsRejected.inc({ direction: this.direction, reason });
    this.#sessionErrorLog.warn(
      {
        direction: this.direction,
        reason,
        peer: peerId === '' ? undefined : peerId,
        code: error.code,
        error: error.message,
      },
      'session closed: the peer broke the HTTP/2 protocol or flooded it',
    );
  }

  /** A connection closed because it carried no exchange for the session idle timeout. */
  idleSession(): void {
    this.#metrics.connectionsRejected.inc({ direction: this.direction, reason: 'idle' });
  }

  /**
   * A peer's response cut after its head went to the caller (the outbound's HTTP/2 path): the request is counted
   * already (its status), so the cut is counted as a reset, under why. `protocol_error`: this sidecar reset the stream
   * or closed its session for the peer's protocol breach or flood, counted as the inbound counts a caller's; a flood
   * cuts every stream of its session at once, so its line is rate-limited as the inbound's is. `stream_idle_timeout`:
   * nothing moved for the timeout (rate-limited as the idle resets). `peer_response_truncated`: the peer reset the
   * stream or its connection closed, one line each, as the HTTP/1.1 path writes them.
   */
  responseCut(
    peerId: string,
    reason: 'protocol_error' | 'stream_idle_timeout' | 'peer_response_truncated',
    message: string,
    detail: Readonly<Record<string, unknown>>,
  ): void {
    this.#metrics.streamsReset.inc({ direction: this.direction, reason });
    const fields = { direction: this.direction, reason, peer: peerId === '' ? undefined : peerId, ...detail };
    if (reason === 'protocol_error') this.#protocolLog.warn(fields, message);
    else if (reason === 'stream_idle_timeout') this.#idleLog.warn(fields, message);
    else this.#logger.warn(fields, message);
  }

  reset(peerId: string, reason: StreamResetReason, message: string, cause?: unknown): void {
    this.#metrics.streamsReset.inc({ direction: this.direction, reason });
    this.#logger.warn(
      { direction: this.direction, reason, peer: peerId === '' ? undefined : peerId, cause: causeText(cause) },
      message,
    );
  }
}

/** Why an exchange was reset (the `reason` label of meshauth_streams_reset_total). */
export type StreamResetReason =
  | 'app_response_truncated'
  | 'client_aborted'
  | 'protocol_error'
  | 'stream_idle_timeout'
  | 'peer_response_truncated';

function causeText(cause: unknown): string | undefined {
  if (cause instanceof Error) {
    const code = (cause as Error & { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${cause.message}` : cause.message;
  }
  return cause === undefined ? undefined : String(cause);
}
