// Admission of client connections to a TLS listener, before and right after the handshake: a cap on open
// connections (dropped at accept by net.Server.maxConnections), on handshakes in progress, on established
// connections per authenticated SPIFFE ID, and a handshake timeout. Once half of the handshake places are taken, one
// client address may hold at most a quarter of them: a handshake holds its place until it completes or times out,
// and a few bytes of ClientHello on every place would otherwise shut every other client out. A burst from one
// address (a TCP service's pool) still gets up to half of them; clients behind a NAT that hides them share that half.
// A client address is the address itself on the inbound (its clients are pods, which cannot pick their addresses,
// and in an IPv6 cluster a node's pods often share one /64) and, on the external listener, an IPv6 client's /64
// (a host on the internet can use any address of its subnet). On the external listener, where a connection has no
// SPIFFE ID to cap, one client address may also hold at most maxConnectionsPerSource open connections, idle or not
// (a quarter of all by default).
// Everything it refuses is counted (meshauth_connections_rejected_total) and logged at most once per interval
// (ConnectionRefusals, which the outbound listener's cap shares), so a flood of idle or failing connections costs
// bounded file descriptors, memory and log volume. The listener owns the sockets; this class only counts and decides.
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { addTo, clientAddress, clientSourceKey } from '../../platform/index.js';
import { type Logger, type Metrics, RateLimitedLog } from '../../telemetry/index.js';
import { ConnectionRefusals, type ConnectionRejectReason, capOpenConnections } from '../connection-refusals.js';
import type { Direction } from '../data-plane-telemetry.js';
import { effectiveMaxConnections, openFileLimit } from './fd-budget.js';
import { FLOOD_LOG_INTERVAL_MS, type InboundLimits } from './limits.js';

const kPeer = Symbol('meshauth.peerId');
const kSource = Symbol('meshauth.source');
type Counted = TLSSocket & { [kPeer]?: string; [kSource]?: string };

export class ConnectionGuard {
  /** The listening socket: accepts TCP, applies the accept-time limits, hands the rest on to TLS. */
  readonly server: NetServer;
  readonly #direction: Direction;
  readonly #limits: InboundLimits;
  readonly #metrics: Metrics;
  readonly #refusals: ConnectionRefusals;
  readonly #handshakeLog: RateLimitedLog;
  readonly #perPeer = new Map<string, number>();
  /** Per client address: connections accepted and not closed, and those past their handshake. */
  readonly #openBySource = new Map<string, number>();
  readonly #establishedBySource = new Map<string, number>();
  readonly #onPeerClose = (socket: Counted): void => this.#releasePeer(socket);
  #open = 0;
  #established = 0;

  constructor(options: {
    readonly direction: Direction;
    readonly limits: InboundLimits;
    readonly metrics: Metrics;
    readonly logger: Logger;
    /** Starts TLS on each admitted socket (the listener's TLS server, or its own acceptor). */
    readonly handOver: (socket: Socket) => void;
  }) {
    this.#direction = options.direction;
    this.#limits = options.limits;
    this.#metrics = options.metrics;
    this.#refusals = new ConnectionRefusals(options.direction, options.metrics, options.logger);
    this.#handshakeLog = new RateLimitedLog(
      options.logger,
      options.metrics,
      'tls_handshake_failed',
      FLOOD_LOG_INTERVAL_MS,
    );
    const handOver = options.handOver;
    this.server = createNetServer({ noDelay: true });
    const limits = options.limits;
    const maxConnections = effectiveMaxConnections(limits.maxConnections, openFileLimit(), limits.appConnections);
    if (maxConnections < limits.maxConnections) {
      options.logger.warn(
        { direction: this.#direction, configured: limits.maxConnections, applied: maxConnections },
        'inbound.limits.maxConnections lowered to fit the open-file limit (ulimit -n) with headroom for the app hop and the admin port',
      );
    }
    capOpenConnections(this.server, maxConnections, this.#refusals);
    this.server.on('connection', (socket: Socket) => {
      const source = sourceKeyOf(this.#direction, socket.remoteAddress);
      const refusal = this.#handshakeRefusal(source);
      if (refusal !== undefined) {
        this.#refusals.refuse(refusal, socket.remoteAddress);
        socket.destroy();
        return;
      }
      this.#open++;
      addTo(this.#openBySource, source, 1);
      this.#metrics.connectionsOpen.inc({ direction: this.#direction });
      socket.once('close', () => {
        this.#open--;
        addTo(this.#openBySource, source, -1);
        this.#metrics.connectionsOpen.dec({ direction: this.#direction });
      });
      handOver(socket);
    });
  }

  /** Connections accepted and not yet closed (handshaking or established). */
  get open(): number {
    return this.#open;
  }

  /**
   * After the handshake: counts the connection as established; false (and counted) above the per-peer cap.
   * `peerId` undefined (external listener: no client identity at the connection level) skips the per-peer cap.
   */
  established(socket: TLSSocket, peerId: string | undefined): boolean {
    const counted = socket as Counted;
    this.#established++;
    // Keyed as the open connections are (sourceKeyOf): an IPv6 pod's established connections were counted under its
    // /64 and its open ones under its address, so all of them counted as handshakes under way.
    const source = sourceKeyOf(this.#direction, socket.remoteAddress);
    counted[kSource] = source;
    addTo(this.#establishedBySource, source, 1);
    socket.once('close', () => this.#onPeerClose(counted));
    if (peerId === undefined) return true;
    const held = this.#perPeer.get(peerId) ?? 0;
    counted[kPeer] = peerId;
    this.#perPeer.set(peerId, held + 1);
    if (held >= this.#limits.maxConnectionsPerPeer) {
      this.#refusals.refuse('per_peer', socket.remoteAddress, peerId);
      return false;
    }
    return true;
  }

  /**
   * A failed handshake (the caller destroys the socket): a timeout is also a refused connection; the log line
   * is rate-limited because a client can fail handshakes as fast as it can connect.
   */
  handshakeFailed(reason: string, fields: Readonly<Record<string, unknown>>, message: string): void {
    if (reason === 'handshake_timeout') {
      this.#metrics.connectionsRejected.inc({ direction: this.#direction, reason: 'handshake_timeout' });
    }
    this.#handshakeLog.warn({ direction: this.#direction, reason, ...fields }, message);
  }

  close(): void {
    this.server.close();
    this.#refusals.close();
    this.#handshakeLog.close();
  }

  /** Why a new connection from `source` may not start a handshake now, if it may not. */
  #handshakeRefusal(source: string): ConnectionRejectReason | undefined {
    const { maxHandshakes } = this.#limits;
    if (this.#direction === 'external') {
      const share = this.#limits.maxConnectionsPerSource ?? Math.max(1, Math.floor(this.server.maxConnections / 4));
      if ((this.#openBySource.get(source) ?? 0) >= share) return 'max_connections_per_source';
    }
    const handshaking = this.#open - this.#established;
    if (handshaking >= maxHandshakes) return 'max_handshakes';
    if (handshaking < Math.floor(maxHandshakes / 2)) return undefined;
    const fromSource = (this.#openBySource.get(source) ?? 0) - (this.#establishedBySource.get(source) ?? 0);
    return fromSource >= Math.max(1, Math.floor(maxHandshakes / 4)) ? 'max_handshakes_per_source' : undefined;
  }

  #releasePeer(socket: Counted): void {
    this.#established--;
    const source = socket[kSource];
    if (source !== undefined) addTo(this.#establishedBySource, source, -1);
    const peerId = socket[kPeer];
    if (peerId === undefined) return;
    const held = (this.#perPeer.get(peerId) ?? 1) - 1;
    if (held === 0) this.#perPeer.delete(peerId);
    else this.#perPeer.set(peerId, held);
  }
}

/**
 * The key a connection is counted under per client: the address on the inbound (IPv4-mapped as IPv4), an IPv6
 * client's /64 on the external listener.
 */
export function sourceKeyOf(direction: Direction, address: string | undefined): string {
  return direction === 'external' ? clientSourceKey(address) : (clientAddress(address) ?? '');
}
