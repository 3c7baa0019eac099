// Client connections a sidecar listener refuses: each counted in meshauth_connections_rejected_total{direction,reason}
// and logged at most once per interval, so a flood of refused connections costs bounded log volume; and the cap on
// open connections applied at accept. Shared by the inbound's and the external listener's ConnectionGuard and by the
// outbound listener. It counts and logs; the listeners own their sockets.
import type { Server as NetServer } from 'node:net';
import { clientAddress } from '../platform/index.js';
import { type Logger, type Metrics, RateLimitedLog } from '../telemetry/index.js';
import type { Direction } from './data-plane-telemetry.js';
import { FLOOD_LOG_INTERVAL_MS } from './inbound/limits.js';

export type ConnectionRejectReason =
  | 'max_connections'
  | 'max_connections_per_source'
  | 'max_handshakes'
  | 'max_handshakes_per_source'
  | 'per_peer'
  | 'handshake_timeout';

export class ConnectionRefusals {
  readonly #direction: Direction;
  readonly #metrics: Metrics;
  readonly #log: RateLimitedLog;

  constructor(direction: Direction, metrics: Metrics, logger: Logger) {
    this.#direction = direction;
    this.#metrics = metrics;
    this.#log = new RateLimitedLog(logger, metrics, 'connection_refused', FLOOD_LOG_INTERVAL_MS);
  }

  refuse(reason: ConnectionRejectReason, remote: string | undefined, peer?: string): void {
    this.#metrics.connectionsRejected.inc({ direction: this.#direction, reason });
    this.#log.warn(
      { direction: this.#direction, reason, remote: clientAddress(remote), peer },
      `connection refused: ${reason}`,
    );
  }

  /** Writes the pending summary of suppressed lines (shutdown). */
  close(): void {
    this.#log.close();
  }
}

/**
 * Caps `server` at `max` open connections: past it Node closes the accepted handle before any JS socket exists, so
 * nothing is written and a flood costs no more than the accept (cheapest under a flood); each is refused as
 * `max_connections`.
 */
export function capOpenConnections(server: NetServer, max: number, refusals: ConnectionRefusals): void {
  server.maxConnections = max;
  server.on('drop', () => refusals.refuse('max_connections', undefined));
}
