// Per-request accounting of the data path (SPEC §8): `meshauth_requests_total`, the duration histogram and, for
// rejections, `meshauth_requests_rejected_total` plus exactly one log line. Counter children are cached per
// label set so the success path costs two map lookups, an increment and an observe: no label hashing, no log.
import { performance } from 'node:perf_hooks';
import type { Counter, Histogram } from 'prom-client';
import type { MeshauthError } from '../errors/index.js';
import type { Logger, Metrics } from '../telemetry/index.js';

export type Direction = 'inbound' | 'outbound' | 'external';

type CounterChild = ReturnType<Counter<'direction' | 'peer_id' | 'code'>['labels']>;
type HistogramChild = ReturnType<Histogram<'direction'>['labels']>;

export class DataPlaneTelemetry {
  readonly direction: Direction;
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  readonly #byPeer = new Map<string, Map<number, CounterChild>>();
  readonly #duration: HistogramChild;

  constructor(direction: Direction, metrics: Metrics, logger: Logger) {
    this.direction = direction;
    this.#metrics = metrics;
    this.#logger = logger;
    this.#duration = metrics.requestDuration.labels(direction);
  }

  /** Counts a request whose response headers were just sent; `startedAt` is a performance.now() value. */
  completed(peerId: string, status: number, startedAt: number): void {
    let byStatus = this.#byPeer.get(peerId);
    if (byStatus === undefined) {
      byStatus = new Map();
      this.#byPeer.set(peerId, byStatus);
    }
    let child = byStatus.get(status);
    if (child === undefined) {
      child = this.#metrics.requests.labels(this.direction, peerId, String(status));
      byStatus.set(status, child);
    }
    child.inc();
    this.#duration.observe((performance.now() - startedAt) / 1000);
  }

  /** Counts and logs a request the sidecar answered with an error of its own. */
  rejected(peerId: string, error: MeshauthError, startedAt: number, detail?: Readonly<Record<string, unknown>>): void {
    this.completed(peerId, error.status, startedAt);
    this.#metrics.requestsRejected.inc({ direction: this.direction, code: error.code });
    this.#logger.warn(
      {
        direction: this.direction,
        code: error.code,
        status: error.status,
        reason: error.reason,
        peer: peerId === '' ? undefined : peerId,
        ...error.detail,
        ...detail,
        cause: causeText(error.cause),
      },
      `request rejected: ${error.message}`,
    );
  }
}

function causeText(cause: unknown): string | undefined {
  if (cause instanceof Error) {
    const code = (cause as Error & { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${cause.message}` : cause.message;
  }
  return cause === undefined ? undefined : String(cause);
}
