// Requests in flight at the gateway per client source (clientSourceKey, as the public listener's per-address
// connection cap: an IPv6 client by its /64) and route. Behind the gateway every browser is one caller, the gateway's
// SPIFFE ID, at the service's sidecar, which gives that one caller a share of its app (75 % of appConnections, then a
// FIFO queue): without a bound here one anonymous client with a few HTTP/2 connections held all of it, and every other
// browser's request to the route waited behind its requests until they timed out. Refusals are reported here: each
// counted, logged once per client per interval. Owns no socket; the clock comes in.
import { INBOUND_LIMIT_DEFAULTS } from '../config/index.js';
import { MeshauthError } from '../errors/index.js';
import { addTo } from '../platform/index.js';
import { APP_POOL_PEER_SHARE } from '../sidecar/inbound/limits.js';
import { type Logger, LogWindows, type Metrics } from '../telemetry/index.js';

/**
 * One client's requests in flight to a route, per endpoint of the route: 75 % of the app places a service's sidecar
 * gives the gateway with its default limits (96 of 128 appConnections), so 72. One client at its bound leaves a
 * quarter of them to everyone else, as the sidecar leaves a quarter of its app to peers other than a busy one. A
 * route whose name resolves to several endpoints has that much more: the gateway holds a session, and a share of the
 * app, at each.
 */
export const CLIENT_SHARE_PER_ENDPOINT = Math.floor(
  APP_POOL_PEER_SHARE * Math.floor(APP_POOL_PEER_SHARE * INBOUND_LIMIT_DEFAULTS.appConnections),
);

/** A client's bound on a route with `endpoints` endpoints (one while its name has not resolved yet). */
export function clientShareOf(endpoints: number): number {
  return CLIENT_SHARE_PER_ENDPOINT * Math.max(1, endpoints);
}

/** How often each client's refusals are counted and logged. */
export const CLIENT_SHARE_LOG_INTERVAL_MS = 10_000;

/** The answer past the bound: 429 on HTTP/1.1 (with Retry-After), RST_STREAM(REFUSED_STREAM) on HTTP/2. */
export function clientShareExceeded(max: number): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_RATE_LIMITED', 'this client already has its share of the route in flight', {
    reason: 'client_share',
    detail: { max },
  });
}

export interface ClientShareOptions {
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** A monotonic clock in ms (performance.now). */
  readonly now: () => number;
}

export class ClientShare {
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  /** Requests in flight by route and client; an entry goes at 0, so the map holds only clients with requests. */
  readonly #inFlight = new Map<string, number>();
  /** The log line of each client's first refusal in an interval. */
  readonly #logWindows: LogWindows;

  constructor(options: ClientShareOptions) {
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#logWindows = new LogWindows(CLIENT_SHARE_LOG_INTERVAL_MS, options.now);
  }

  /**
   * Takes a place for a request of `client` to `route`: the key to give back to leave(), or the refusal when the
   * client already has `max()` in flight there (reported). `max` is asked only past CLIENT_SHARE_PER_ENDPOINT.
   */
  enter(client: string, route: string, max: () => number): string | MeshauthError {
    const key = `${route} ${client}`;
    const inFlight = this.#inFlight.get(key) ?? 0;
    if (inFlight >= CLIENT_SHARE_PER_ENDPOINT) {
      const bound = max();
      if (inFlight >= bound) {
        const refusal = clientShareExceeded(bound);
        this.#report(client, route, refusal);
        return refusal;
      }
    }
    this.#inFlight.set(key, inFlight + 1);
    return key;
  }

  /** The request of `key` (from enter) is over. */
  leave(key: string): void {
    addTo(this.#inFlight, key, -1);
  }

  /**
   * Every refusal is counted (meshauth_connections_rejected_total{direction="edge",reason="client_share"}); the first
   * of a client in each interval is logged, the others only counted in meshauth_log_lines_suppressed_total. A client
   * past its bound refuses hundreds of requests a second, and one shared rate-limited line would hide every other
   * client's.
   */
  #report(client: string, route: string, refusal: MeshauthError): void {
    this.#metrics.connectionsRejected.inc({ direction: 'edge', reason: 'client_share' });
    if (!this.#logWindows.open(client)) {
      this.#metrics.logLinesSuppressed.inc({ event: 'gateway_client_share' });
      return;
    }
    this.#logger.warn(
      {
        event: 'gateway_client_share',
        direction: 'edge',
        reason: 'client_share',
        code: refusal.code,
        route,
        client,
        ...refusal.detail,
        intervalMs: CLIENT_SHARE_LOG_INTERVAL_MS,
      },
      'requests refused: this client already has its share of the route in flight (further refusals of it in the interval are not logged)',
    );
  }
}
