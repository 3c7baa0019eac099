// The inbound listener: the Policy Enforcement Point (SPEC §2). Terminates mTLS (chain verified by OpenSSL,
// SPIFFE leaf rules checked once per connection before any HTTP byte is read), then serves h2 or HTTP/1.1 by
// ALPN (ListenerCore), strips and sets identity headers, runs the authn/authz hooks and streams to the app.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { performance } from 'node:perf_hooks';
import { createServer as createTlsServer, type TLSSocket, type Server as TlsServer } from 'node:tls';
import type { CredentialHolder } from '../../agent/credential-holder.js';
import type { SidecarConfig } from '../../config/index.js';
import { isMeshauthError, MeshauthError } from '../../errors/index.js';
import type { Logger, Metrics } from '../../telemetry/index.js';
import {
  mtlsServerOptions,
  peerOf,
  svidFailureReason,
  tlsClientErrorReason,
  type VerifiedPeer,
  verifyPeer,
} from '../../tls/index.js';
import { copyH2RequestHeaders, copyRequestHeaders, HAS_BODY, INBOUND_POLICY, XFCC } from '../http-headers.js';
import { listenOn } from '../listen.js';
import { ConnectionGuard } from './connection-guard.js';
import type { InboundHooks, InboundRequestView } from './inbound-hooks.js';
import type { InboundLimits } from './limits.js';
import { type HookedRequest, hookedRequest, ListenerCore, requestView } from './listener-core.js';

export { DEFAULT_INBOUND_LIMITS, type InboundLimits } from './limits.js';
export { classifyAppError, INBOUND_LIMITS } from './listener-core.js';

export interface InboundListenerOptions {
  readonly config: SidecarConfig;
  /** Overrides of INBOUND_LIMITS (tests shorten the timeouts). */
  readonly limits?: Partial<InboundLimits>;
  readonly holder: CredentialHolder;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly hooks?: InboundHooks;
  readonly now?: () => Date;
}

export class InboundListener {
  readonly #config: SidecarConfig;
  readonly #holder: CredentialHolder;
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  readonly #hooks: InboundHooks;
  /** No hook at all (mTLS only): requests skip the request view and the hook calls. */
  readonly #plain: boolean;
  readonly #now: () => Date;
  readonly #core: ListenerCore;
  readonly #tls: TlsServer;
  readonly #guard: ConnectionGuard;
  readonly #unsubscribe: () => void;
  #port = 0;

  constructor(options: InboundListenerOptions) {
    this.#config = options.config;
    this.#holder = options.holder;
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#hooks = options.hooks ?? {};
    this.#plain = this.#hooks.authorize === undefined && this.#hooks.authenticateEndUser === undefined;
    this.#now = options.now ?? (() => new Date());
    this.#core = new ListenerCore({
      config: options.config,
      limits: options.limits,
      direction: 'inbound',
      metrics: options.metrics,
      logger: options.logger,
      onH1Request: (req, res) => this.#onH1Request(req, res),
      peerIdOf: (socket) => peerOf(socket as TLSSocket)?.idString ?? '',
    });
    const profile = { tls12: this.#config.inbound.tls12 };
    // Without credentials the server has no certificate, so every handshake fails: traffic is refused at the TLS
    // layer until the first SVID arrives (then setSecureContext below).
    // The TLS server never listens: the guard's net.Server accepts, applies the accept-time limits and hands it
    // each admitted socket.
    this.#tls = createTlsServer({
      ...mtlsServerOptions(profile, this.#holder.current),
      handshakeTimeout: this.#core.limits.handshakeTimeoutMs,
    });
    this.#guard = new ConnectionGuard({
      direction: 'inbound',
      limits: this.#core.limits,
      metrics: options.metrics,
      logger: options.logger,
      tls: this.#tls,
    });
    this.#unsubscribe = this.#holder.subscribe((credentials) => {
      // Rotation: new handshakes use the new context; established connections keep theirs (no drops).
      this.#tls.setSecureContext(mtlsServerOptions(profile, credentials));
    });
    this.#tls.on('secureConnection', (socket: TLSSocket) => this.#onSecureConnection(socket));
    this.#tls.on('tlsClientError', (error: Error, socket: TLSSocket) => this.#onTlsClientError(error, socket));
  }

  get port(): number {
    return this.#port;
  }

  async listen(): Promise<number> {
    this.#port = await listenOn(this.#guard.server, this.#config.inbound.listen);
    return this.#port;
  }

  /**
   * SIGTERM drain (security.md F10): stop accepting, then let in-flight requests finish until `deadline` (ms since
   * epoch); each connection closes as soon as it has nothing in flight (ListenerCore.close).
   */
  async close(deadline: number): Promise<void> {
    this.#unsubscribe();
    this.#guard.close();
    await this.#core.close(deadline);
  }

  #onTlsClientError(error: Error & { code?: string }, socket: TLSSocket): void {
    // Node does not close a socket whose handshake failed or timed out once 'tlsClientError' has a listener.
    socket.destroy();
    const reason =
      error.code === 'ERR_TLS_HANDSHAKE_TIMEOUT'
        ? 'handshake_timeout'
        : tlsClientErrorReason(error, socket.authorizationError);
    this.#metrics.tlsHandshakeFailures.inc({ direction: 'inbound', reason });
    this.#guard.handshakeFailed(
      reason,
      { remote: socket.remoteAddress, error: error.code ?? error.message },
      'TLS handshake refused',
    );
  }

  #onSecureConnection(socket: TLSSocket): void {
    const credentials = this.#holder.current;
    let peer: VerifiedPeer;
    try {
      if (credentials === undefined) throw new MeshauthError('MESHAUTH_ERR_NOT_READY', 'no SVID yet');
      peer = verifyPeer(socket, this.#config.trustDomain, credentials.svid.id, this.#now());
    } catch (error) {
      // SPIFFE-rule failure after OpenSSL accepted the chain: drop the connection before reading any HTTP byte.
      const reason = svidFailureReason(error);
      this.#metrics.tlsHandshakeFailures.inc({ direction: 'inbound', reason });
      this.#logger.warn(
        {
          direction: 'inbound',
          reason,
          remote: socket.remoteAddress,
          code: isMeshauthError(error) ? error.code : undefined,
          error: error instanceof Error ? error.message : String(error),
        },
        'peer certificate refused',
      );
      socket.destroy();
      return;
    }
    if (!this.#guard.established(socket, peer.idString)) {
      socket.destroy();
      return;
    }
    this.#core.adopt(socket, (stream, headers, rawHeaders) => this.#onH2Stream(stream, headers, rawHeaders, peer));
  }

  #onH2Stream(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    rawHeaders: readonly string[],
    peer: VerifiedPeer,
  ): void {
    const startedAt = performance.now();
    const method = headers[':method'] as string;
    if (this.#core.refusedH2(stream, headers, rawHeaders, peer.idString, method, startedAt)) return;
    const target = headers[':path'] as string;
    if (this.#plain) {
      const out: string[] = [];
      copyH2RequestHeaders(headers, out);
      out.push(XFCC, peer.xfcc);
      this.#core.dispatch(
        stream,
        true,
        peer.idString,
        method,
        target,
        out,
        !stream.endAfterHeaders,
        startedAt,
        undefined,
      );
      return;
    }
    const view = requestView(undefined, stream, headers, method, target, this.#port, peer);
    this.#withHooks(
      hookedRequest(stream, true, peer.idString, method, target, startedAt, undefined, headers, peer.xfcc),
      view,
    );
  }

  #onH1Request(req: IncomingMessage, res: ServerResponse): void {
    const startedAt = performance.now();
    const peer = peerOf(req.socket as TLSSocket);
    if (peer === undefined) {
      res.destroy(); // unreachable: only verified sockets reach this server
      return;
    }
    const method = req.method as string;
    const target = req.url as string;
    if (this.#core.refusedH1(res, req, peer.idString, method, target, startedAt)) return;
    if (this.#plain) {
      const out: string[] = [];
      const flags = copyRequestHeaders(req.rawHeaders, INBOUND_POLICY, out);
      out.push(XFCC, peer.xfcc);
      this.#core.dispatch(res, false, peer.idString, method, target, out, (flags & HAS_BODY) !== 0, startedAt, req);
      return;
    }
    const view = requestView(req, undefined, req.headers, method, target, this.#port, peer);
    this.#withHooks(
      hookedRequest(res, false, peer.idString, method, target, startedAt, req, undefined, peer.xfcc),
      view,
    );
  }

  /** Runs authenticateEndUser (if any), then authorize (if any) with what it verified, then forwards. */
  #withHooks(request: HookedRequest, view: InboundRequestView): void {
    const { authenticateEndUser, authorize } = this.#hooks;
    if (authenticateEndUser === undefined) {
      this.#core.authorizeAndForward(request, view, authorize, undefined);
      return;
    }
    this.#core.authenticated(request, authenticateEndUser(view), 'end-user authentication failed', (outcome) => {
      const withUser: InboundRequestView =
        outcome.user === undefined && outcome.chain === undefined
          ? view
          : {
              ...view,
              ...(outcome.user === undefined ? {} : { user: outcome.user }),
              ...(outcome.chain === undefined ? {} : { chain: outcome.chain }),
            };
      this.#core.authorizeAndForward(request, withUser, authorize, outcome);
    });
  }
}
