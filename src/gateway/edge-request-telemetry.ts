// Every answer at the edge, the gateway's own (refusals, sign-in redirects, 401s) and the services' alike:
// meshauth_gateway_requests_total{route,code} and meshauth_gateway_request_duration_seconds{route}, from request
// received to response headers sent (as meshauth_request_duration_seconds at a sidecar). Counted when the head goes
// out, whoever writes it: a request whose client left before any head is no answer (the sidecars count alike).
// Labels are bounded: route names come from the config, `route=""` is a request no route took.
import { performance } from 'node:perf_hooks';
import { type Metrics, statusLabel } from '../telemetry/index.js';

/** What is read and wrapped of a node:http or node:http2 compat response. */
export interface EdgeAnswer {
  writeHead(status: number, ...rest: never[]): unknown;
}

interface Pending {
  readonly startedAt: number;
  route: string;
  counted: boolean;
}

export class EdgeRequestTelemetry {
  readonly #metrics: Metrics;
  readonly #pending = new WeakMap<object, Pending>();

  constructor(metrics: Metrics) {
    this.#metrics = metrics;
  }

  /** A request arrived whose answer goes on `res`: counted and timed when its head is written. */
  started(res: EdgeAnswer): void {
    const pending: Pending = { startedAt: performance.now(), route: '', counted: false };
    this.#pending.set(res, pending);
    const writeHead = res.writeHead;
    const metrics = this.#metrics;
    // An own property over the prototype's: node:http and node:http2 write an implicit head (a bare end(), a first
    // write) through this.writeHead too, so every head passes here once.
    res.writeHead = function countedWriteHead(this: EdgeAnswer, status: number, ...rest: never[]): unknown {
      const result = writeHead.call(this, status, ...rest);
      // After Node took the head: a refused one (an invalid status) is retried as an error answer, counted then.
      if (pending.counted) return result;
      pending.counted = true;
      metrics.gatewayRequests.inc({ route: pending.route, code: statusLabel(status) });
      metrics.gatewayRequestDuration.observe({ route: pending.route }, (performance.now() - pending.startedAt) / 1000);
      return result;
    };
  }

  /** The request matched `route` (its label from here on). */
  route(res: object, route: string): void {
    const pending = this.#pending.get(res);
    if (pending !== undefined) pending.route = route;
  }

  /**
   * An answer written on the socket, no response object (a head node:http could not parse, an HTTP/1.1 CONNECT):
   * counted, not timed (no request was received to time from).
   */
  answeredOnSocket(status: number): void {
    this.#metrics.gatewayRequests.inc({ route: '', code: statusLabel(status) });
  }
}
