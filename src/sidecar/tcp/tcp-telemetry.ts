// Accounting of the TCP tunnels (meshauth_tcp_*): one counter per connection decision, bytes each way,
// the open gauge and the duration histogram; a refused connection is one warn line (rate-limited per result, but a
// policy deny). Label children are cached so the byte path costs one increment per chunk. Labels are bounded: peer
// IDs are authenticated SPIFFE IDs, at most Metrics.peerIds.max of them (the rest `other`).
import type { Counter } from 'prom-client';
import { type Logger, type Metrics, RefusalLog } from '../../telemetry/index.js';
import type { TunnelCounters, TunnelEnd } from './tcp-tunnel.js';

/** `egress`: the raw tunnels of CONNECT to an `outbound.egress` destination (no peer, refusals are HTTP answers). */
export type TcpDirection = 'inbound' | 'outbound' | 'egress';

/** The `result` label: the tunnel was established, or why not. */
export type TcpResult =
  | 'established'
  | 'denied'
  | 'limit'
  | 'not_ready'
  | 'draining'
  | 'peer_identity'
  | 'peer_unavailable'
  | 'app_unavailable';

/**
 * A peer or an app can repeat a refused connection in a loop (past a limit, while the sidecar has no SVID, the peer
 * down): the first lines per result per this interval, every refusal still counted.
 */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

type ConnectionChild = ReturnType<Counter<'direction' | 'peer_id' | 'result'>['labels']>;

export class TcpTelemetry {
  readonly direction: TcpDirection;
  readonly counters: TunnelCounters;
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  readonly #refusedLog: RefusalLog;
  readonly #children = new Map<string, ConnectionChild>();
  readonly #open;
  readonly #duration;

  constructor(direction: TcpDirection, metrics: Metrics, logger: Logger) {
    this.direction = direction;
    this.#metrics = metrics;
    this.#logger = logger;
    this.#refusedLog = new RefusalLog(logger, metrics, 'tcp_connection_refused', 'result', REFUSAL_LOG_INTERVAL_MS);
    this.#open = metrics.tcpConnectionsOpen.labels(direction);
    this.#duration = metrics.tcpConnectionDuration.labels(direction);
    const sent = metrics.tcpSentBytes.labels(direction);
    const received = metrics.tcpReceivedBytes.labels(direction);
    this.#open.set(0);
    this.counters = { fromApp: (n) => sent.inc(n), toApp: (n) => received.inc(n) };
  }

  /** Writes the summaries of refusal lines held back in the current windows (the listener is closing). */
  close(): void {
    this.#refusedLog.close();
  }

  /** Counts one connection decision. */
  connection(peerId: string, result: TcpResult): void {
    // Keyed by the label value: a peer past the bound shares `other`'s children and adds none of its own.
    const label = this.#metrics.peerIds.labelOf(peerId, this.#logger);
    const key = `${result} ${label}`;
    let child = this.#children.get(key);
    if (child === undefined) {
      child = this.#metrics.tcpConnections.labels(this.direction, label, result);
      this.#children.set(key, child);
    }
    child.inc();
  }

  /** A refused connection: counted, and logged (a policy deny always: it is the deny's audit line). */
  refused(peerId: string, result: Exclude<TcpResult, 'established'>, detail: Readonly<Record<string, unknown>>): void {
    this.connection(peerId, result);
    const fields = {
      direction: this.direction,
      protocol: 'tcp',
      result,
      ...(peerId === '' ? {} : { peer: peerId }),
      ...detail,
    };
    if (result === 'denied') this.#logger.warn(fields, 'tcp connection refused');
    else this.#refusedLog.warn(result, fields, 'tcp connection refused');
  }

  opened(peerId: string): void {
    this.connection(peerId, 'established');
    this.#open.inc();
  }

  /** A tunnel ended; `peerId` and `broken` name who broke the framing and how, for end `framing`. */
  closed(end: TunnelEnd, seconds: number, peerId = '', broken?: string): void {
    this.#open.dec();
    this.#duration.observe(seconds);
    if (end === 'framing') {
      // Input the tunnel refused (a frame over MAX_FRAME_BYTES, data after the end frame): counted with the other
      // connections closed for breaking their protocol (an h2 session error), and one warn line.
      this.#metrics.connectionsRejected.inc({ direction: this.direction, reason: 'tcp_framing' });
      this.#logger.warn(
        {
          direction: this.direction,
          protocol: 'tcp',
          reason: 'tcp_framing',
          ...(peerId === '' ? {} : { peer: peerId }),
          ...(broken === undefined ? {} : { error: broken }),
          seconds,
        },
        'tcp tunnel reset: the peer broke the meshauth-tcp/2 framing',
      );
    } else if (end !== 'closed') {
      this.#logger.debug({ direction: this.direction, protocol: 'tcp', end, seconds }, 'tcp tunnel ended');
    }
  }
}

/** The text of an error for a log line: its code when it has one, and its message. */
export function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as Error & { code?: unknown }).code;
  return typeof code === 'string' && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
}
