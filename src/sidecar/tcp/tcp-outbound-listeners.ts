// The outbound half of TCP tunnels: one loopback net.Server per `outbound.tcp` entry. For each app connection it opens
// mTLS to the peer sidecar (ALPN meshauth-tcp/2, /1 accepted from older peers, one SecureContext per rotation, the
// server authenticated by SPIFFE ID, never by host name) and pipes both ways (TcpTunnel). The app's bytes are not read
// before the tunnel is up (pauseOnConnect). A failed tunnel resets the app's connection: one log line, one metric;
// a refused server certificate also counts in meshauth_tls_handshake_failures_total, classified as the HTTP path's.
// When the trust bundle loses a root, open tunnels whose server chains to it are cut, as the inbound cuts its clients.
import { isIP, connect as netConnect, createServer as netServer, type Server, type Socket } from 'node:net';
import { type SecureContext, type TLSSocket, connect as tlsConnect } from 'node:tls';
import type { CredentialHolder } from '../../agent/credential-holder.js';
import { formatHostPort, type HostPort } from '../../config/index.js';
import { isMeshauthError, MeshauthError } from '../../errors/index.js';
import type { SpiffeId, TrustDomain } from '../../identity/index.js';
import { atPeerExpiry, listenOn } from '../../platform/index.js';
import { listenAll } from '../../platform/listen-all.js';
import type { Logger, Metrics } from '../../telemetry/index.js';
import {
  answerIdentityCheckWithLeaf,
  type ConnectPhase,
  linkedChainDer,
  peerConnectFailureReason,
  peerSvidInvalid,
  serverChainError,
  spiffeServerIdentity,
  type TlsProfile,
} from '../../tls/index.js';
import { chainsToKept, type KeptRoots, keptRootsAfter, NOTHING_KEPT } from '../../tls/removed-roots.js';
import { waitUntil } from '../listen.js';
import { ClientContextCache } from './client-context.js';
import { resetSocket } from './reset-socket.js';
import { type ResolveHost, systemResolveHost } from './resolve-host.js';
import { TCP_ALPN, TCP_ALPNS } from './tcp-alpn.js';
import { TCP_LIMITS, type TcpLimits } from './tcp-limits.js';
import { errorText, TcpTelemetry } from './tcp-telemetry.js';
import { TcpTunnel } from './tcp-tunnel.js';

/** One `outbound.tcp` entry (structurally the config's TcpRouteConfig). */
export interface TcpOutboundRoute {
  /** Loopback address the app connects to. */
  readonly listen: HostPort;
  /** The peer sidecar's inbound listener (IP or DNS name). */
  readonly address: { readonly host: string; readonly port: number };
  /** SPIFFE IDs the peer may present; empty: any ID of the trust domain. */
  readonly ids: readonly SpiffeId[];
}

export interface TcpOutboundOptions {
  /** Keyed as in the config (`"127.0.0.1:5432"`); `ports` uses the same keys. */
  readonly routes: ReadonlyMap<string, TcpOutboundRoute>;
  readonly trustDomain: TrustDomain;
  readonly holder: CredentialHolder;
  readonly profile: TlsProfile;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly limits?: Partial<TcpLimits> | undefined;
  /** Name resolution for route addresses (default: the system resolver). */
  readonly resolveHost?: ResolveHost | undefined;
  readonly now?: (() => Date) | undefined;
  /**
   * Tunnels open at once across every listener: what the open-file limit leaves them (sidecar.ts), each holding
   * two descriptors. Default: no total beyond each listener's own `limits.maxConnections`.
   */
  readonly maxTotalConnections?: number | undefined;
}

/** The connection attempt in progress for one app connection (replaced when the next address is tried). */
interface Attempt {
  mesh: TLSSocket | undefined;
  /** Root removals before it began: a handshake under way at a removal was verified against the roots before it. */
  readonly removals: number;
}

interface Listener {
  readonly key: string;
  readonly route: TcpOutboundRoute;
  readonly server: Server;
  /** Round-robin position over the resolved addresses. */
  next: number;
  port: number;
  /** App connections accepted and not yet closed. */
  open: number;
}

export class TcpOutboundListeners {
  readonly #options: TcpOutboundOptions;
  readonly #limits: TcpLimits;
  readonly #telemetry: TcpTelemetry;
  readonly #contexts: ClientContextCache;
  readonly #resolve: ResolveHost;
  readonly #listeners: Listener[] = [];
  /** App connections being tunnelled or set up, each with its shutdown. */
  readonly #live = new Map<Socket, () => void>();
  /** Each open tunnel's server chain (DER, leaf first), checked again when a root leaves the bundle. */
  readonly #servers = new Map<TcpTunnel, readonly Buffer[]>();
  #removals = 0;
  #kept: KeptRoots = NOTHING_KEPT;
  readonly #unsubscribe: () => void;
  #draining = false;

  constructor(options: TcpOutboundOptions) {
    this.#options = options;
    this.#limits = { ...TCP_LIMITS, ...options.limits };
    this.#telemetry = new TcpTelemetry('outbound', options.metrics, options.logger);
    this.#contexts = new ClientContextCache(options.holder, options.profile);
    this.#resolve = options.resolveHost ?? systemResolveHost;
    for (const [key, route] of options.routes) {
      const server = netServer({ allowHalfOpen: true, pauseOnConnect: true });
      const listener: Listener = { key, route, server, next: 0, port: 0, open: 0 };
      server.on('connection', (app: Socket) => this.#onConnection(listener, app));
      this.#listeners.push(listener);
    }
    this.#unsubscribe = options.holder.prepare((credentials) => {
      const kept = keptRootsAfter(options.holder.current, credentials);
      if (kept === undefined) return noCommit;
      return () => {
        this.#removals++;
        this.#kept = kept;
        this.#keepOnlyServersOf(kept);
      };
    });
  }

  /** Binds every listener; resolves with the bound port by route key. Every bind settles first (listenAll). */
  async listen(): Promise<ReadonlyMap<string, number>> {
    await listenAll(
      this.#listeners.map(async (l) => {
        l.port = await listenOn(l.server, l.route.listen, `outbound.tcp["${l.key}"]`);
        // After listen, errors come from accept (e.g. EMFILE): logged, the listener keeps serving.
        l.server.on('error', (error: Error) =>
          this.#options.logger.warn({ listen: l.key, protocol: 'tcp', error: errorText(error) }, 'tcp listener error'),
        );
      }),
    );
    return this.ports;
  }

  get ports(): ReadonlyMap<string, number> {
    return new Map(this.#listeners.map((l) => [l.key, l.port]));
  }

  /** Tunnels open or being set up. */
  /** App connections accepted and not yet closed, every listener together (their descriptors are still held). */
  #accepted(): number {
    let sum = 0;
    for (const listener of this.#listeners) sum += listener.open;
    return sum;
  }

  get open(): number {
    return this.#live.size;
  }

  /** Drain: stop accepting; open tunnels run until they end or `deadline` (ms since epoch), then are closed. */
  async close(deadline: number): Promise<void> {
    this.#draining = true;
    this.#unsubscribe();
    for (const l of this.#listeners) l.server.close();
    await waitUntil(deadline, () => this.#live.size === 0);
    for (const shutdown of [...this.#live.values()]) shutdown();
    // Destroyed sockets report 'close' asynchronously; resolve once every tunnel has let go (bounded).
    await waitUntil(Date.now() + 1_000, () => this.#live.size === 0);
    this.#telemetry.close();
  }

  #onConnection(listener: Listener, app: Socket): void {
    app.on('error', ignore); // until the tunnel takes over; failures below reset it
    if (this.#draining) {
      this.#telemetry.refused('', 'draining', { listen: listener.key });
      resetSocket(app);
      return;
    }
    // Counted here rather than by the server's own maxConnections, which closes with a FIN (a clean end to the
    // app) and counts one listener only: the listeners share what the open-file limit leaves them.
    const total = this.#options.maxTotalConnections ?? Number.POSITIVE_INFINITY;
    if (listener.open >= this.#limits.maxConnections || this.#accepted() >= total) {
      this.#telemetry.refused('', 'limit', {
        listen: listener.key,
        code: 'MESHAUTH_ERR_PEER_UNAVAILABLE',
        limit: listener.open >= this.#limits.maxConnections ? 'maxConnections' : 'openFiles',
      });
      resetSocket(app);
      return;
    }
    listener.open += 1;
    app.once('close', () => {
      listener.open -= 1;
    });
    const context = this.#contexts.current();
    if (context === undefined) {
      this.#telemetry.refused('', 'not_ready', { listen: listener.key, code: 'MESHAUTH_ERR_NOT_READY' });
      resetSocket(app);
      return;
    }
    const attempt: Attempt = { mesh: undefined, removals: this.#removals };
    this.#live.set(app, () => {
      attempt.mesh?.destroy();
      app.destroy();
    });
    const forget = () => this.#live.delete(app);
    app.once('close', () => {
      if (attempt.mesh === undefined || !attempt.mesh.destroyed) return; // the tunnel or a connect attempt owns it
      forget();
    });
    this.#resolve(listener.route.address.host).then(
      (addresses) => {
        if (app.destroyed) {
          forget();
          return;
        }
        // Round robin over the addresses; a refused TCP connect moves on to the next address (at most once each).
        const start = listener.next++;
        const order = addresses.map((_, i) => addresses[(start + i) % addresses.length] ?? '');
        this.#connect(listener, app, order, context, forget, attempt);
      },
      (error: unknown) => {
        forget();
        this.#fail(listener, app, '', 'peer_unavailable', error);
      },
    );
  }

  #connect(
    listener: Listener,
    app: Socket,
    addresses: readonly string[],
    context: SecureContext,
    forget: () => void,
    attempt: Attempt,
  ): void {
    const { route } = listener;
    const { trustDomain, now } = this.#options;
    const ip = addresses[0] ?? '';
    let peerId = '';
    let peerNotAfterMs = Number.NaN;
    // Where the attempt failed, in connectPeer's terms (PeerConnectError.phase), so that peerConnectFailureReason
    // classifies a refused certificate exactly as on the HTTP path; a refused, reset or timed-out connect is none.
    let phase: ConnectPhase = 'connect';
    const checkIdentity = spiffeServerIdentity(
      trustDomain,
      route.ids,
      (id, notAfterMs) => {
        peerId = id.toString();
        peerNotAfterMs = notAfterMs;
      },
      now,
    );
    const tcp = netConnect({ host: ip, port: route.address.port, allowHalfOpen: true });
    let tcpConnected = false;
    tcp.once('connect', () => {
      tcpConnected = true;
    });
    const host = route.address.host;
    const mesh = tlsConnect({
      socket: tcp,
      secureContext: context,
      ALPNProtocols: [...TCP_ALPNS],
      // A DNS name is sent as SNI but never used to authenticate the server; an IP address sends no SNI.
      ...(isIP(host) === 0 ? { servername: host } : {}),
      checkServerIdentity: (name, cert) => {
        const error = checkIdentity(name, cert);
        if (error !== undefined) phase = 'identity';
        return error;
      },
    });
    // tls.connect's typings lack allowHalfOpen; set before any 'end' can arrive, a FIN must not end our side.
    mesh.allowHalfOpen = true;
    answerIdentityCheckWithLeaf(mesh);
    const timer = setTimeout(() => {
      phase = 'timeout';
      mesh.destroy(Object.assign(new Error('connect and TLS handshake timed out'), { code: 'ETIMEDOUT' }));
    }, this.#limits.connectTimeoutMs);
    const onError = (error: Error) => {
      clearTimeout(timer);
      tcp.destroy();
      const refused = peerConnectFailureReason(phase, error);
      if (refused !== undefined)
        this.#options.metrics.tlsHandshakeFailures.inc({ direction: 'outbound', reason: refused });
      if (!tcpConnected && addresses.length > 1 && !app.destroyed && this.#live.has(app)) {
        app.off('close', onAppClose);
        this.#connect(listener, app, addresses.slice(1), context, forget, attempt);
        return;
      }
      forget();
      const result = isMeshauthError(error, 'MESHAUTH_ERR_PEER_IDENTITY') ? 'peer_identity' : 'peer_unavailable';
      this.#fail(listener, app, peerId, result, error, ip);
    };
    const onAppClose = () => {
      clearTimeout(timer);
      mesh.off('error', onError);
      mesh.on('error', ignore);
      mesh.destroy();
      forget();
    };
    mesh.once('error', onError);
    app.once('close', onAppClose);
    mesh.once('secureConnect', () => {
      clearTimeout(timer);
      if (peerId === '') {
        // checkServerIdentity runs for every verified chain; getting here without an ID would be a bug: fail closed.
        phase = 'identity';
        mesh.destroy(Object.assign(new Error('peer identity was not verified'), { code: 'PEER_NOT_VERIFIED' }));
        return;
      }
      const leaf = mesh.getPeerX509Certificate();
      const chainError = serverChainError(mesh, leaf);
      if (chainError !== undefined || leaf === undefined) {
        phase = 'identity';
        mesh.destroy(chainError);
        return;
      }
      if (typeof mesh.alpnProtocol !== 'string' || !TCP_ALPNS.includes(mesh.alpnProtocol)) {
        // Only a server that ignores ALPN gets here (one that offers other protocols refuses the handshake).
        mesh.destroy(
          Object.assign(new Error(`peer accepted neither ALPN ${TCP_ALPNS.join(' nor ')}`), { code: 'ALPN_REFUSED' }),
        );
        return;
      }
      const chain = linkedChainDer(leaf);
      if (attempt.removals !== this.#removals && !chainsToKept(chain, this.#kept)) {
        phase = 'identity';
        mesh.destroy(rootRemovedError());
        return;
      }
      mesh.off('error', onError);
      app.off('close', onAppClose);
      app.off('error', ignore);
      this.#telemetry.opened(peerId);
      const tunnel = new TcpTunnel({
        app,
        mesh,
        meshTcp: tcp,
        idleTimeoutMs: this.#limits.idleTimeoutMs,
        framed: mesh.alpnProtocol === TCP_ALPN,
        counters: this.#telemetry.counters,
        onClose: (end, seconds, broken) => {
          forget();
          this.#servers.delete(tunnel);
          this.#telemetry.closed(end, seconds, peerId, broken);
        },
      });
      this.#live.set(app, () => tunnel.shutdown());
      this.#servers.set(tunnel, chain);
      // At the server certificate's notAfter the peer no longer speaks for the ID it was checked against: the
      // tunnel is cut (a reset both ways, as at the drain deadline). The inbound end does the same at the client's.
      atPeerExpiry(mesh, peerNotAfterMs - (now?.() ?? new Date()).getTime(), () => tunnel.shutdown());
      app.resume();
    });
    attempt.mesh = mesh;
  }

  /** Cuts (a reset both ways) every open tunnel whose server does not chain to a root that stayed in the bundle. */
  #keepOnlyServersOf(kept: KeptRoots): void {
    let cut = 0;
    for (const [tunnel, chain] of this.#servers) {
      if (chainsToKept(chain, kept)) continue;
      tunnel.shutdown();
      cut++;
    }
    if (cut === 0) return;
    this.#options.metrics.connectionsRejected.inc({ direction: 'outbound', reason: 'root_removed' }, cut);
    this.#options.logger.warn(
      { direction: 'outbound', protocol: 'tcp', connections: cut },
      'tunnels closed: their server’s root left the trust bundle',
    );
  }

  #fail(
    listener: Listener,
    app: Socket,
    peerId: string,
    result: 'peer_identity' | 'peer_unavailable',
    error: unknown,
    ip?: string,
  ): void {
    this.#telemetry.refused(peerId, result, {
      listen: listener.key,
      address: formatHostPort(listener.route.address),
      ...(ip === undefined || ip === listener.route.address.host ? {} : { ip }),
      code: result === 'peer_identity' ? 'MESHAUTH_ERR_PEER_IDENTITY' : 'MESHAUTH_ERR_PEER_UNAVAILABLE',
      ...(isMeshauthError(error) && error.reason !== undefined ? { reason: error.reason } : {}),
      error: errorText(error),
    });
    resetSocket(app);
  }
}

function ignore(): void {}

function noCommit(): void {}

/** A server verified against roots one of which left the bundle during the handshake: as one under an unknown CA. */
function rootRemovedError(): MeshauthError {
  return peerSvidInvalid(
    new MeshauthError('MESHAUTH_ERR_SVID_CHAIN', "the server's root left the trust bundle during the handshake", {
      reason: 'unknown_ca',
    }),
  );
}
