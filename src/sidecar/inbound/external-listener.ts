// The optional external listener (Issue 5): a public server-TLS listener (no client certificate) for API clients
// outside the mesh. Every request must carry a valid bearer token; passports are refused; identity headers are
// stripped and set from the verified token (origin passport + user, never XFCC: there is no client certificate);
// the same policy decides (no mTLS peer); the request streams to the app like the inbound's (ListenerCore).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { performance } from 'node:perf_hooks';
import { createServer as createTlsServer, type TLSSocket, type Server as TlsServer } from 'node:tls';
import type { HostPort, SidecarConfig } from '../../config/index.js';
import { MeshauthError } from '../../errors/index.js';
import type { Logger, Metrics } from '../../telemetry/index.js';
import { protocolOptions, tlsClientErrorReason } from '../../tls/index.js';
import { listenOn } from '../listen.js';
import { ConnectionGuard } from './connection-guard.js';
import type { ExternalCertificate } from './external-certificate.js';
import type { ExternalHooks, ExternalRequestView } from './external-hooks.js';
import type { InboundLimits } from './limits.js';
import { type HookedRequest, hookedRequest, ListenerCore, requestView } from './listener-core.js';

export interface ExternalListenerOptions {
  readonly config: SidecarConfig;
  readonly listen: HostPort;
  readonly certificate: ExternalCertificate;
  readonly hooks: ExternalHooks;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Overrides of INBOUND_LIMITS (tests shorten the timeouts). */
  readonly limits?: Partial<InboundLimits>;
}

/** The metric label of this listener (`meshauth_requests_total{direction="external",peer_id=""}`). */
export const EXTERNAL_DIRECTION = 'external';
/** External clients have no SPIFFE ID: the `peer_id` label stays empty (bounded). */
const NO_PEER = '';

export class ExternalListener {
  readonly #listen: HostPort;
  readonly #hooks: ExternalHooks;
  readonly #core: ListenerCore;
  readonly #tls: TlsServer;
  readonly #guard: ConnectionGuard;
  readonly #onStream = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: readonly string[]): void =>
    this.#onH2Stream(stream, headers, rawHeaders);
  #port = 0;

  constructor(options: ExternalListenerOptions) {
    const { config, metrics, logger } = options;
    this.#listen = options.listen;
    this.#hooks = options.hooks;
    this.#core = new ListenerCore({
      config,
      limits: options.limits,
      direction: EXTERNAL_DIRECTION,
      metrics,
      logger,
      onH1Request: (req, res) => this.#onH1Request(req, res),
      peerIdOf: () => NO_PEER,
    });
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
      tls: this.#tls,
    });
    this.#guard = guard;
    this.#tls.on('secureConnection', (socket: TLSSocket) => {
      // No client identity here: every external client shares one per-peer budget keyed by its address.
      if (!guard.established(socket, `address:${socket.remoteAddress ?? ''}`)) {
        socket.destroy();
        return;
      }
      this.#core.adopt(socket, this.#onStream);
    });
    this.#tls.on('tlsClientError', (error: Error & { code?: string }, socket: TLSSocket) => {
      // Node does not close a socket whose handshake failed or timed out once 'tlsClientError' has a listener.
      socket.destroy();
      const reason =
        error.code === 'ERR_TLS_HANDSHAKE_TIMEOUT'
          ? 'handshake_timeout'
          : tlsClientErrorReason(error, socket.authorizationError);
      metrics.tlsHandshakeFailures.inc({ direction: EXTERNAL_DIRECTION, reason });
      guard.handshakeFailed(
        reason,
        { remote: socket.remoteAddress, error: error.code ?? error.message },
        'TLS handshake refused',
      );
    });
  }

  get port(): number {
    return this.#port;
  }

  async listen(): Promise<number> {
    this.#port = await listenOn(this.#guard.server, this.#listen);
    return this.#port;
  }

  /** Drain as the inbound does: stop accepting, finish in-flight requests until `deadline`, then close. */
  async close(deadline: number): Promise<void> {
    this.#guard.close();
    await this.#core.close(deadline);
  }

  #onH2Stream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: readonly string[]): void {
    const startedAt = performance.now();
    const method = headers[':method'] as string;
    if (this.#core.refusedH2(stream, headers, rawHeaders, NO_PEER, method, startedAt)) return;
    const target = headers[':path'] as string;
    const view = requestView(undefined, stream, headers, method, target, this.#port, undefined);
    this.#serve(hookedRequest(stream, true, NO_PEER, method, target, startedAt, undefined, headers, undefined), view);
  }

  #onH1Request(req: IncomingMessage, res: ServerResponse): void {
    const startedAt = performance.now();
    const method = req.method as string;
    const target = req.url as string;
    if (this.#core.refusedH1(res, req, NO_PEER, method, target, startedAt)) return;
    const view = requestView(req, undefined, req.headers, method, target, this.#port, undefined);
    this.#serve(hookedRequest(res, false, NO_PEER, method, target, startedAt, req, undefined, undefined), view);
  }

  /** authenticate (always) → authorize (with a policy) → forward with the headers the authenticator set. */
  #serve(request: HookedRequest, view: ExternalRequestView): void {
    this.#core.authenticated(request, this.#hooks.authenticate(view), 'client authentication failed', (outcome) => {
      if (outcome.reject === undefined && outcome.user === undefined) {
        // An authenticator that lets a request through must have verified someone: fail closed.
        const error = new MeshauthError('MESHAUTH_ERR_TOKEN_MISSING', 'no verified client');
        this.#core.reject(request.sink, request.h2, NO_PEER, error, request.startedAt);
        return;
      }
      const withUser: ExternalRequestView = { ...view, user: outcome.user, chain: outcome.chain ?? [] };
      this.#core.authorizeAndForward(request, withUser, this.#hooks.authorize, outcome);
    });
  }
}
