// The inbound half of a TCP tunnel: takes a TLS socket the inbound listener has already authenticated (chain by
// OpenSSL, SPIFFE leaf rules by verifyPeer) and that negotiated a tunnel ALPN (meshauth-tcp/2 or /1), decides on the
// connection with what L4 knows (tcp-policy.ts), connects to the `inbound.tcp` app and pipes both ways (TcpTunnel). A
// refused connection is closed right after the handshake: one log line and `meshauth_tcp_connections_total`.
import { connect as netConnect, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { type CompiledPolicy, decide, type PolicyProblem, TCP_POLICY_INVALID_RULE } from '../../authz/index.js';
import type { HostPort } from '../../config/index.js';
import { clientAddress } from '../../platform/index.js';
import type { Logger, Metrics } from '../../telemetry/index.js';
import type { VerifiedPeer } from '../../tls/index.js';
import { waitUntil } from '../listen.js';
import { resetSocket } from './reset-socket.js';
import { TCP_ALPN } from './tcp-alpn.js';
import { TCP_LIMITS, type TcpLimits } from './tcp-limits.js';
import { tcpAuthzRequest, validateTcpPolicy } from './tcp-policy.js';
import { errorText, TcpTelemetry } from './tcp-telemetry.js';
import { TcpTunnel } from './tcp-tunnel.js';

export interface TcpInboundOptions {
  /** `inbound.tcp.app`: where accepted tunnels go. */
  readonly app: HostPort;
  /** The current policy (the watcher swaps it); absent: any authenticated peer of the trust domain (mTLS only). */
  readonly policy?: (() => CompiledPolicy) | undefined;
  readonly limits?: Partial<TcpLimits> | undefined;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly now?: (() => Date) | undefined;
}

export class TcpInboundHandler {
  readonly #options: TcpInboundOptions;
  readonly #limits: TcpLimits;
  readonly #telemetry: TcpTelemetry;
  readonly #now: () => Date;
  /** Tunnels and app connects in progress, each with its shutdown. */
  readonly #live = new Map<Socket, () => void>();
  /**
   * The verified peer of each tunnel in #live and the time it was opened: what a changed policy is asked about again
   * (reauthorize), as the tunnel was opened.
   */
  readonly #peers = new Map<TLSSocket, { readonly peer: VerifiedPeer; readonly openedAt: Date }>();
  readonly #perPeer = new Map<string, number>();
  /** Policies already checked for HTTP-only conditions (a policy normally passed that check when it was loaded). */
  readonly #checked = new WeakMap<CompiledPolicy, readonly PolicyProblem[]>();
  #draining = false;

  constructor(options: TcpInboundOptions) {
    this.#options = options;
    this.#limits = { ...TCP_LIMITS, ...options.limits };
    this.#telemetry = new TcpTelemetry('inbound', options.metrics, options.logger);
    this.#now = options.now ?? (() => new Date());
  }

  /** Tunnels open or connecting to the app. */
  get open(): number {
    return this.#live.size;
  }

  /** Serves a verified TLS socket that negotiated a tunnel ALPN (meshauth-tcp/2, or /1 from an older peer). */
  adopt(socket: TLSSocket, peer: VerifiedPeer): void {
    socket.pause(); // nothing is read before the app connection is there to take it
    socket.allowHalfOpen = true; // set before any 'end' can arrive: a FIN from the client must not end our side
    socket.setTimeout(0); // the listener's HTTP idle timers do not apply: a tunnel has its own idle timeout
    const peerId = peer.idString;
    const refuse = (result: 'denied' | 'limit' | 'draining', detail: Readonly<Record<string, unknown>>) => {
      this.#telemetry.refused(peerId, result, { remote: clientAddress(socket.remoteAddress), ...detail });
      resetSocket(socket); // the client's app may already be writing: a FIN would look like a clean end
    };
    const count = this.#perPeer.get(peerId) ?? 0;
    const limit =
      this.#live.size >= this.#limits.maxConnections
        ? 'maxConnections'
        : count >= this.#limits.maxConnectionsPerPeer
          ? 'maxConnectionsPerPeer'
          : undefined;
    if (this.#draining) {
      refuse('draining', {});
      return;
    }
    if (limit !== undefined) {
      refuse('limit', { code: 'MESHAUTH_ERR_PEER_UNAVAILABLE', limit });
      return;
    }
    const openedAt = this.#now();
    const denied = this.#authorize(socket, peer, openedAt, 'open');
    if (denied !== undefined) {
      refuse('denied', denied);
      return;
    }
    this.#perPeer.set(peerId, count + 1);
    this.#peers.set(socket, { peer, openedAt });
    this.#connectApp(socket, peerId);
  }

  /**
   * The policy changed (the watcher applied a new file): every tunnel open or connecting is asked again, and those the
   * new policy denies are reset. HTTP asks the policy per request, so a caller whose access was removed loses it with
   * its next request; a tunnel is authorized once, and a connection pool keeps its tunnels for hours — without this
   * the caller would keep the access until its SVID expires. `mode: audit` logs the deny and keeps the tunnel.
   * `when.time` is judged at the time the tunnel was opened, as at its opening: otherwise an edit of an unrelated rule
   * would cut every tunnel whose time window has ended since, and a tunnel outlive its window only when nobody edits.
   */
  reauthorize(): void {
    if (this.#options.policy === undefined) return;
    for (const [socket, { peer, openedAt }] of [...this.#peers]) {
      const shutdown = this.#live.get(socket);
      if (shutdown === undefined || socket.destroyed) continue;
      const denied = this.#authorize(socket, peer, openedAt, 'reload');
      if (denied === undefined) continue;
      this.#options.metrics.connectionsRejected.inc({ direction: 'inbound', reason: 'policy_changed' });
      this.#options.logger.warn(
        {
          direction: 'inbound',
          protocol: 'tcp',
          peer: peer.idString,
          remote: clientAddress(socket.remoteAddress),
          ...denied,
        },
        'tcp tunnel closed: the changed policy no longer allows it',
      );
      shutdown(); // a reset both ways, as at the drain deadline: the apps must not take it for a clean end
    }
  }

  /** Drain: no new tunnel; open ones run until they end or `deadline` (ms since epoch), then are closed. */
  async close(deadline: number): Promise<void> {
    this.#draining = true;
    await waitUntil(deadline, () => this.#live.size === 0);
    for (const shutdown of [...this.#live.values()]) shutdown();
    // Destroyed sockets report 'close' asynchronously; resolve once every tunnel has let go (bounded).
    await waitUntil(Date.now() + 1_000, () => this.#live.size === 0);
    this.#telemetry.close();
  }

  /**
   * Undefined when the connection may proceed, else the log detail of the deny. A tunnel asked again at a reload
   * counts in the decisions metric only when it is cut: the metric counts connections decided, and thousands of
   * pooled tunnels would otherwise add thousands of allows per policy edit.
   */
  #authorize(
    socket: TLSSocket,
    peer: VerifiedPeer,
    openedAt: Date,
    asked: 'open' | 'reload',
  ): Readonly<Record<string, unknown>> | undefined {
    const current = this.#options.policy?.();
    if (current === undefined) return undefined;
    const appPort = this.#options.app.port;
    let problems = this.#checked.get(current);
    if (problems === undefined) {
      problems = validateTcpPolicy(current, appPort);
      this.#checked.set(current, problems);
    }
    if (problems.length > 0) {
      // Loading should have refused this policy; if it got here, fail closed rather than skip the L7 conditions.
      this.#options.metrics.authzDecisions.inc({ decision: 'deny', rule: TCP_POLICY_INVALID_RULE });
      return { code: 'MESHAUTH_ERR_POLICY_INVALID', rule: TCP_POLICY_INVALID_RULE, problems: problems.length };
    }
    const request = tcpAuthzRequest(peer.id, clientAddress(socket.remoteAddress) ?? '', appPort, openedAt);
    const decision = decide(current, request);
    if (asked === 'open' || (decision.decision === 'deny' && decision.enforced)) {
      this.#options.metrics.authzDecisions.inc({ decision: decision.decision, rule: decision.rule });
    }
    if (decision.decision === 'allow') return undefined;
    const audit = {
      event: 'authz_deny',
      code: 'MESHAUTH_ERR_FORBIDDEN',
      rule: decision.rule,
      mode: decision.mode,
      enforced: decision.enforced,
    };
    if (decision.enforced) return audit;
    this.#options.logger.info(
      {
        ...audit,
        direction: 'inbound',
        protocol: 'tcp',
        peer: peer.idString,
        remote: clientAddress(socket.remoteAddress),
      },
      'authz deny (audit only)',
    );
    return undefined;
  }

  #connectApp(socket: TLSSocket, peerId: string): void {
    const { app: address, logger } = this.#options;
    const app = netConnect({ host: address.host, port: address.port, allowHalfOpen: true });
    let connected = false;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.#live.delete(socket);
      this.#peers.delete(socket);
      const left = (this.#perPeer.get(peerId) ?? 1) - 1;
      if (left <= 0) this.#perPeer.delete(peerId);
      else this.#perPeer.set(peerId, left);
    };
    const abort = () => {
      resetSocket(app);
      resetSocket(socket);
    };
    this.#live.set(socket, abort);
    const timer = setTimeout(
      () => app.destroy(Object.assign(new Error('app connect timed out'), { code: 'ETIMEDOUT' })),
      this.#limits.connectTimeoutMs,
    );
    const onAppError = (error: Error) => {
      clearTimeout(timer);
      release();
      this.#telemetry.refused(peerId, 'app_unavailable', {
        code: 'MESHAUTH_ERR_UPSTREAM_UNAVAILABLE',
        app: `${address.host}:${address.port}`,
        error: errorText(error),
      });
      resetSocket(socket); // the client's app sees a reset, as if the app had refused the connection itself
    };
    const onEarlyClose = () => {
      if (connected) return;
      clearTimeout(timer);
      app.off('error', onAppError);
      app.on('error', ignore);
      app.destroy();
      release();
    };
    app.once('error', onAppError);
    socket.once('close', onEarlyClose);
    socket.on('error', ignore); // until the tunnel takes over: a reset before the app answered only closes it
    app.once('connect', () => {
      clearTimeout(timer);
      if (socket.destroyed) return;
      connected = true;
      app.off('error', onAppError);
      socket.off('close', onEarlyClose);
      socket.off('error', ignore);
      this.#telemetry.opened(peerId);
      logger.debug({ direction: 'inbound', protocol: 'tcp', peer: peerId }, 'tcp tunnel established');
      const tunnel = new TcpTunnel({
        app,
        mesh: socket,
        idleTimeoutMs: this.#limits.idleTimeoutMs,
        framed: socket.alpnProtocol === TCP_ALPN,
        counters: this.#telemetry.counters,
        onClose: (end, seconds, broken) => {
          release();
          this.#telemetry.closed(end, seconds, peerId, broken);
        },
      });
      this.#live.set(socket, () => tunnel.shutdown());
      socket.resume();
    });
  }
}

function ignore(): void {}
