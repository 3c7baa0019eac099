// The optional external listener: a public server-TLS listener (no client certificate) for API clients outside the
// mesh. The same pipeline as the inbound with other stages: every request must carry a valid bearer token;
// passports are refused; identity headers are stripped and set from the verified token (origin passport + user,
// never XFCC: there is no client certificate); the same policy decides (no mTLS peer); then the app.
import { createServer as createTlsServer, type TLSSocket, type Server as TlsServer } from 'node:tls';
import type { HostPort, SidecarConfig } from '../../config/index.js';
import { clientAddress, listenOn, tcpSocketOf } from '../../platform/index.js';
import type { Logger, Metrics } from '../../telemetry/index.js';
import { closedBeforeHandshake, protocolOptions, tlsClientErrorReason } from '../../tls/index.js';
import { acceptHead, authenticateWith, authorizeWith, identityHeaders } from '../pipeline/stages.js';
import { ConnectionGuard } from './connection-guard.js';
import type { ExternalCertificate } from './external-certificate.js';
import type { ExternalHooks } from './external-hooks.js';
import type { AuthzVerdict, EndUserOutcome, InboundRequestView } from './inbound-hooks.js';
import type { InboundLimits } from './limits.js';
import { ListenerCore } from './listener-core.js';

export interface ExternalListenerOptions {
  readonly config: SidecarConfig;
  readonly listen: HostPort;
  readonly certificate: ExternalCertificate;
  readonly hooks: ExternalHooks;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Overrides of `config.inbound.limits` and DEFAULT_INBOUND_LIMITS (tests shorten the timeouts). */
  readonly limits?: Partial<InboundLimits>;
}

/** The metric label of this listener (`meshauth_requests_total{direction="external",peer_id=""}`). */
export const EXTERNAL_DIRECTION = 'external';

export class ExternalListener {
  readonly #listen: HostPort;
  readonly #core: ListenerCore;
  readonly #tls: TlsServer;
  readonly #guard: ConnectionGuard;
  #port = 0;

  constructor(options: ExternalListenerOptions) {
    const { config, metrics, logger } = options;
    this.#listen = options.listen;
    this.#core = new ListenerCore({
      config,
      limits: options.limits,
      direction: EXTERNAL_DIRECTION,
      metrics,
      logger,
      peerOf: () => undefined,
      port: () => this.#port,
    });
    // accept → bearer token (always; fail closed without a verified client) → policy (if any) → identity headers
    // (user + origin passport, never XFCC: there is no client certificate) → app.
    // Exchange.view() leaves `peer` undefined here, which is the external view's contract (ExternalRequestView).
    const authenticate = options.hooks.authenticate as (view: InboundRequestView) => Promise<EndUserOutcome>;
    const authorize = options.hooks.authorize as ((view: InboundRequestView) => AuthzVerdict) | undefined;
    this.#core.use([
      acceptHead(this.#core.limits.maxHeaderBytes),
      authenticateWith(authenticate, {
        failure: 'client authentication failed',
        requireUser: true,
        unanswered: (exchange, error) => this.#core.telemetry.rejectedUnanswered(exchange.peerId, error),
      }),
      ...(authorize === undefined ? [] : [authorizeWith(authorize, metrics)]),
      identityHeaders((exchange) => this.#core.telemetry.identityHeadersStripped(exchange.peerId)),
      this.#core.app.forward,
    ]);
    // Server TLS only: no requestCert, so no client certificate is asked for or looked at. Same protocol profile
    // as the mesh (TLS 1.3; 1.2 AEAD-only with inbound.tls12), ALPN h2 + http/1.1.
    this.#tls = createTlsServer({
      ...protocolOptions({ tls12: config.inbound.tls12 }),
      cert: options.certificate.cert,
      key: options.certificate.key,
      ALPNProtocols: ['h2', 'http/1.1'],
      handshakeTimeout: this.#core.limits.handshakeTimeoutMs,
    });
    const guard = new ConnectionGuard({
      direction: EXTERNAL_DIRECTION,
      limits: this.#core.limits,
      metrics,
      logger,
      handOver: (socket) => this.#tls.emit('connection', socket),
    });
    this.#guard = guard;
    this.#tls.on('secureConnection', (socket: TLSSocket) => {
      // No client identity at the connection level (clients behind one NAT or load balancer share an address), so
      // no per-peer cap here: the connection and handshake caps bound this listener.
      guard.established(socket, undefined);
      this.#core.adopt(socket, undefined);
    });
    this.#tls.on('tlsClientError', (error: Error & { code?: string }, socket: TLSSocket) => {
      const bytesRead = tcpSocketOf(socket)?.bytesRead;
      // Node does not close a socket whose handshake failed or timed out once 'tlsClientError' has a listener.
      socket.destroy();
      if (closedBeforeHandshake(error, bytesRead)) return;
      const reason =
        error.code === 'ERR_TLS_HANDSHAKE_TIMEOUT'
          ? 'handshake_timeout'
          : tlsClientErrorReason(error, socket.authorizationError);
      metrics.tlsHandshakeFailures.inc({ direction: EXTERNAL_DIRECTION, reason });
      guard.handshakeFailed(
        reason,
        { remote: clientAddress(socket.remoteAddress), error: error.code ?? error.message },
        'TLS handshake refused',
      );
    });
  }

  get port(): number {
    return this.#port;
  }

  async listen(): Promise<number> {
    this.#port = await listenOn(this.#guard.server, this.#listen, 'inbound.external.listen');
    return this.#port;
  }

  /** Drain as the inbound does: stop accepting, finish in-flight requests until `deadline`, then close. */
  async close(deadline: number): Promise<void> {
    this.#guard.close();
    await this.#core.close(deadline);
  }
}
