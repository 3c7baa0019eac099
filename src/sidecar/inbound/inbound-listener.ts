// The inbound listener: the Policy Enforcement Point. Admits connections within its limits
// (ConnectionGuard), terminates mTLS (chain verified by OpenSSL, SPIFFE leaf rules checked once per connection
// before any HTTP byte is read), then runs each request through its stages: accept the head → authenticate the end
// user → authorize → identity headers → app (pipeline/, ListenerCore).
import type { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import type { DetailedPeerCertificate, SecureContext, TLSSocket } from 'node:tls';
import type { CredentialHolder } from '../../agent/credential-holder.js';
import type { SidecarConfig } from '../../config/index.js';
import { errorMessage, isMeshauthError, MeshauthError } from '../../errors/index.js';
import type { TrustBundle } from '../../pki/index.js';
import {
  acceptMtls,
  atPeerExpiry,
  clientAddress,
  listenOn,
  mtlsSecureContext,
  tcpSocketOf,
} from '../../platform/index.js';
import { type Logger, type Metrics, RefusalLog } from '../../telemetry/index.js';
import {
  closedBeforeHandshake,
  mtlsServerOptions,
  NOT_VALID_YET_BY_THIS_CLOCK,
  peerChainDerOf,
  peerOf,
  svidFailureReason,
  tlsClientErrorReason,
  type VerifiedPeer,
  verifyPeer,
} from '../../tls/index.js';
import { chainsToKept, type KeptRoots, keptRootsAfter, NOTHING_KEPT, rootsOf } from '../../tls/removed-roots.js';
import { acceptHead, authenticateWith, authorizeWith, identityHeaders, peerUnexpired } from '../pipeline/stages.js';
import { ConnectionGuard } from './connection-guard.js';
import type { InboundHooks } from './inbound-hooks.js';
import type { InboundLimits } from './limits.js';
import { ListenerCore } from './listener-core.js';

export { DEFAULT_INBOUND_LIMITS, type InboundLimits } from './limits.js';
export { classifyAppError } from './listener-core.js';

const PEER_REFUSED_LOG_INTERVAL_MS = 10_000;

export interface InboundListenerOptions {
  readonly config: SidecarConfig;
  /** Overrides of `config.inbound.limits` and DEFAULT_INBOUND_LIMITS (tests shorten the timeouts). */
  readonly limits?: Partial<InboundLimits>;
  readonly holder: CredentialHolder;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly hooks?: InboundHooks;
  readonly now?: () => Date;
  /** Raw TCP tunnels on the same port: verified connections that negotiated `alpn` are handed to `adopt`. */
  readonly tcp?: InboundTunnel;
}

/** Where the inbound hands a verified connection that asked for a TCP tunnel (ALPN) instead of HTTP. */
export interface InboundTunnel {
  /** The ALPN protocol ids, preferred first (offered after h2 and http/1.1, so HTTP clients never select them). */
  readonly alpns: readonly string[];
  adopt(socket: TLSSocket, peer: VerifiedPeer): void;
}

export class InboundListener {
  readonly #config: SidecarConfig;
  readonly #holder: CredentialHolder;
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  readonly #hooks: InboundHooks;
  readonly #now: () => Date;
  readonly #core: ListenerCore;
  /** The TLS context of the next accepted connection (one built per rotation, not per connection). */
  #secureContext: SecureContext;
  readonly #guard: ConnectionGuard;
  /**
   * A peer whose chain OpenSSL accepted but that breaks a SPIFFE rule (a federated trust domain's workload, a clock
   * ahead) can reconnect in a loop: the first lines per reason per interval, every refusal still counted.
   */
  readonly #peerRefusedLog: RefusalLog;
  readonly #unsubscribe: () => void;
  readonly #tunnel: InboundTunnel | undefined;
  /** Connections whose peer passed the SPIFFE checks (HTTP and tunnels) with the peer's chain, for cutting them
   * when their root leaves the trust bundle. */
  readonly #verified = new Map<TLSSocket, readonly Buffer[]>();
  /**
   * Root removals so far, and what the last one kept. A TLS socket is bound to the secure context current when its
   * TCP connection was accepted (a rotation changes later sockets only), so a handshake still under way at a
   * removal is verified against the old roots and is missed by #keepOnlyPeersOf: it is checked when it completes.
   */
  #removals = 0;
  #kept: KeptRoots = NOTHING_KEPT;
  /**
   * The TCP socket of each accepted connection → #removals when it was accepted. Keyed by the socket itself, not by
   * its remote address|port: that pair is unique per local address only, and a wildcard listener has several.
   */
  readonly #acceptedAt = new WeakMap<Socket, number>();
  #port = 0;
  /** Each trust bundle's roots, parsed once: the ends of the paths verifyPeer checks a client's intermediates along. */
  readonly #bundleRoots = new WeakMap<TrustBundle, readonly X509Certificate[]>();

  constructor(options: InboundListenerOptions) {
    this.#config = options.config;
    this.#holder = options.holder;
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#peerRefusedLog = new RefusalLog(
      options.logger,
      options.metrics,
      'peer_certificate_refused',
      'reason',
      PEER_REFUSED_LOG_INTERVAL_MS,
    );
    this.#hooks = options.hooks ?? {};
    this.#now = options.now ?? (() => new Date());
    this.#tunnel = options.tcp;
    this.#core = new ListenerCore({
      config: options.config,
      limits: options.limits,
      direction: 'inbound',
      metrics: options.metrics,
      logger: options.logger,
      peerOf: (socket) => peerOf(socket as TLSSocket),
      port: () => this.#port,
    });
    // accept → authenticate the end user → authorize → identity headers → app (hooks absent: skipped entirely,
    // so the mTLS-only path builds no request view and allocates no promise).
    const { authenticateEndUser, authorize } = this.#hooks;
    this.#core.use([
      acceptHead(this.#core.limits.maxHeaderBytes),
      // Date.now() unless a test clock is injected: no Date per request.
      peerUnexpired(options.now === undefined ? Date.now : () => this.#now().getTime()),
      ...(authenticateEndUser === undefined
        ? []
        : [
            authenticateWith(authenticateEndUser, {
              failure: 'end-user authentication failed',
              requireUser: false,
              unanswered: (exchange, error) => this.#core.telemetry.rejectedUnanswered(exchange.peerId, error),
            }),
          ]),
      ...(authorize === undefined ? [] : [authorizeWith(authorize, options.metrics)]),
      identityHeaders((exchange) => this.#core.telemetry.identityHeadersStripped(exchange.peerId)),
      this.#core.app.forward,
    ]);
    const profile = { tls12: this.#config.inbound.tls12 };
    // Without credentials the server has no certificate, so every handshake fails: traffic is refused at the TLS
    // layer until the first SVID arrives (then setSecureContext below).
    // The TLS server never listens: the guard's net.Server accepts, applies the accept-time limits and hands it
    // each admitted socket.
    const withTunnel = (tls: ReturnType<typeof mtlsServerOptions>): ReturnType<typeof mtlsServerOptions> =>
      this.#tunnel === undefined
        ? tls
        : { ...tls, ALPNProtocols: [...((tls.ALPNProtocols as string[] | undefined) ?? []), ...this.#tunnel.alpns] };
    const serverOptions = withTunnel(mtlsServerOptions(profile, this.#holder.current));
    const alpnProtocols = (serverOptions.ALPNProtocols as string[] | undefined) ?? [];
    this.#secureContext = mtlsSecureContext(serverOptions);
    // Not tls.Server: acceptMtls starts each handshake as tls.Server does, without the peer-certificate read that
    // leaks on Node 24 (src/platform/tls-accept.ts).
    this.#guard = new ConnectionGuard({
      direction: 'inbound',
      limits: this.#core.limits,
      metrics: options.metrics,
      logger: options.logger,
      handOver: (raw) => {
        // The TLSSocket that reaches #onSecureConnection wraps this socket (tcpSocketOf finds it again). Before any
        // removal nothing is recorded: a connection without a record counts as accepted before the last removal.
        if (this.#removals > 0) this.#acceptedAt.set(raw, this.#removals);
        acceptMtls(raw, {
          secureContext: this.#secureContext,
          handshakeTimeoutMs: this.#core.limits.handshakeTimeoutMs,
          alpnProtocols,
          onSecure: (socket, peerCertificate) => this.#onSecureConnection(socket, peerCertificate),
          onFailure: (error, socket) => this.#onTlsClientError(error, socket),
        });
      },
    });
    this.#unsubscribe = this.#holder.prepare((credentials) => {
      // Prepared before anything switches: a key or chain OpenSSL refuses throws here and the rotation keeps the
      // old credentials everywhere. Commit: new handshakes use the new context; established connections keep
      // theirs (no drops) — except those of peers whose root the new bundle no longer holds.
      const context = mtlsSecureContext(withTunnel(mtlsServerOptions(profile, credentials)));
      const kept = keptRootsAfter(this.#holder.current, credentials);
      return () => {
        this.#secureContext = context;
        if (kept === undefined) return;
        this.#removals++;
        this.#kept = kept;
        this.#keepOnlyPeersOf(kept);
      };
    });
  }

  get port(): number {
    return this.#port;
  }

  async listen(): Promise<number> {
    this.#port = await listenOn(this.#guard.server, this.#config.inbound.listen, 'inbound.listen');
    return this.#port;
  }

  /**
   * SIGTERM drain: stop accepting, then let in-flight requests finish until `deadline` (ms since
   * epoch); each connection closes as soon as it has nothing in flight (ListenerCore.close).
   */
  async close(deadline: number): Promise<void> {
    this.#unsubscribe();
    this.#guard.close();
    this.#peerRefusedLog.close();
    await this.#core.close(deadline);
  }

  /**
   * Closes every connection (HTTP or tunnel) whose peer chain does not lead to a root `kept` holds, the roots that
   * stayed in the trust bundle: those of a removed root, and those whose chain cannot be completed from its
   * intermediates where Node reported it in part. Done here, at the rare root removal, rather than at every handshake.
   */
  #keepOnlyPeersOf(kept: KeptRoots): void {
    let cut = 0;
    for (const [socket, chain] of this.#verified) {
      if (chainsToKept(chain, kept)) continue;
      // A destroy, not resetSocket: an HTTP/2 session over this socket would not notice a reset of the TCP socket
      // under it. A tunnel on it passes the cut on to its app as a reset itself (TcpTunnel: a mesh side closed
      // without its end).
      socket.destroy();
      cut++;
    }
    if (cut === 0) return;
    this.#metrics.connectionsRejected.inc({ direction: 'inbound', reason: 'root_removed' }, cut);
    this.#logger.warn(
      { direction: 'inbound', connections: cut },
      'connections closed: their root left the trust bundle',
    );
  }

  /**
   * At the peer's notAfter its connection is retired (HTTP/2: GOAWAY, streams in flight finish; an idle HTTP/1.1
   * connection or a tunnel: closed), counted under connections_rejected{reason="peer_svid_expired"}. Requests that
   * still arrive on it are refused by the peerUnexpired stage. A peer that renewed has long moved to a new
   * connection; one the CA stopped renewing loses its access here.
   */
  #retireAtExpiry(socket: TLSSocket, peer: VerifiedPeer): void {
    atPeerExpiry(socket, peer.notAfterMs - this.#now().getTime(), () => {
      if (socket.destroyed) return;
      this.#metrics.connectionsRejected.inc({ direction: 'inbound', reason: 'peer_svid_expired' });
      this.#logger.info({ direction: 'inbound', peerId: peer.idString }, 'connection retired: peer SVID expired');
      if (!this.#core.retire(socket)) socket.destroy();
    });
  }

  /**
   * True for a connection accepted before the last root removal (its handshake verified against the roots before
   * it) whose chain does not lead to a root that stayed. A connection whose TCP socket is not found is checked too.
   */
  #rootsOf(bundle: TrustBundle): readonly X509Certificate[] {
    let roots = this.#bundleRoots.get(bundle);
    if (roots === undefined) {
      roots = rootsOf(bundle);
      this.#bundleRoots.set(bundle, roots);
    }
    return roots;
  }

  #handshookAcrossRemoval(socket: TLSSocket, chain: readonly Buffer[]): boolean {
    if (this.#removals === 0) return false;
    const raw = tcpSocketOf(socket);
    const acceptedAt = raw === undefined ? undefined : this.#acceptedAt.get(raw);
    if (acceptedAt === this.#removals) return false;
    return !chainsToKept(chain, this.#kept);
  }

  #onTlsClientError(error: Error & { code?: string }, socket: TLSSocket): void {
    const bytesRead = tcpSocketOf(socket)?.bytesRead;
    // Node does not close a socket whose handshake failed or timed out once 'tlsClientError' has a listener.
    socket.destroy();
    if (closedBeforeHandshake(error, bytesRead)) return;
    const reason =
      error.code === 'ERR_TLS_HANDSHAKE_TIMEOUT'
        ? 'handshake_timeout'
        : tlsClientErrorReason(error, socket.authorizationError);
    this.#metrics.tlsHandshakeFailures.inc({ direction: 'inbound', reason });
    this.#guard.handshakeFailed(
      reason,
      { remote: clientAddress(socket.remoteAddress), error: error.code ?? error.message },
      'TLS handshake refused',
    );
  }

  #onSecureConnection(socket: TLSSocket, peerCertificate: DetailedPeerCertificate): void {
    // Read once, by acceptMtls, for verifyPeer and #keepOnlyPeersOf: the chain the client sent (#keepOnlyPeersOf
    // still completes a chain reported in part, as Node 24's tls.Server left them).
    const chain = peerChainDerOf(peerCertificate);
    const credentials = this.#holder.current;
    let peer: VerifiedPeer;
    try {
      if (credentials === undefined) throw new MeshauthError('MESHAUTH_ERR_NOT_READY', 'no SVID yet');
      if (this.#handshookAcrossRemoval(socket, chain)) {
        throw new MeshauthError('MESHAUTH_ERR_SVID_UNKNOWN_CA', 'peer chain leads to a root removed from the bundle', {
          reason: 'unknown_ca',
        });
      }
      const roots = this.#rootsOf(credentials.bundle);
      peer = verifyPeer(socket, this.#config.trustDomain, credentials.svid.id, this.#now(), chain, roots);
    } catch (error) {
      // SPIFFE-rule failure after OpenSSL accepted the chain: drop the connection before reading any HTTP byte.
      const reason = svidFailureReason(error);
      this.#metrics.tlsHandshakeFailures.inc({ direction: 'inbound', reason });
      // With the time this sidecar read (NOT_VALID_YET_BY_THIS_CLOCK says why it matters).
      const skewed = reason === 'not_yet_valid';
      this.#peerRefusedLog.warn(
        reason,
        {
          direction: 'inbound',
          remote: clientAddress(socket.remoteAddress),
          code: isMeshauthError(error) ? error.code : undefined,
          error: errorMessage(error),
          ...(skewed ? { localTime: this.#now().toISOString() } : {}),
        },
        skewed ? `peer certificate refused: ${NOT_VALID_YET_BY_THIS_CLOCK}` : 'peer certificate refused',
      );
      socket.destroy();
      return;
    }
    if (!this.#guard.established(socket, peer.idString)) {
      socket.destroy();
      return;
    }
    this.#verified.set(socket, chain);
    this.#retireAtExpiry(socket, peer);
    socket.once('close', () => this.#verified.delete(socket));
    if (
      this.#tunnel !== undefined &&
      typeof socket.alpnProtocol === 'string' &&
      this.#tunnel.alpns.includes(socket.alpnProtocol)
    ) {
      this.#tunnel.adopt(socket, peer);
      return;
    }
    this.#core.adopt(socket, peer);
  }
}
