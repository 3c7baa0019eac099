// One resolved address of a route (IP and port): its HTTP/2 session to the peer sidecar (one at a time; a new one
// after GOAWAY, close or rotation), or an HTTP/1.1 client (kept-alive connections, http1-client.ts) when the peer
// chose http/1.1 by ALPN or `outbound.http2` is off; the streams in flight (the balancer's load signal) and the
// passive health record (ejection.ts).
// Sessions are opened with the peer connector, which returns the verified peer ID with the socket: the ID is kept
// here, per endpoint, as the metric label of the requests it carries.
import { type ClientHttp2Session, connect as h2Connect } from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import type { Credentials } from '../../agent/index.js';
import { formatHostPort } from '../../config/index.js';
import type { SpiffeId, TrustDomain } from '../../identity/index.js';
import { atPeerExpiry, MAX_TIMER_MS, MESH_PING_GRACE_MS, whenSessionSilent } from '../../platform/index.js';
import type { Logger, Metrics } from '../../telemetry/index.js';
import {
  type ClientContext,
  type ClientTlsContext,
  connectPeer,
  PeerConnectError,
  type PeerConnection,
  peerConnectFailureReason,
} from '../../tls/index.js';
import { Http1Client, STRAY_ANSWER_NO_REUSE_MS } from '../http1-client.js';
import type { Candidate } from './balancer.js';
import { connectFailed, connectSucceeded, type EjectionState, newEjectionState } from './ejection.js';
import { releaseStreamSlotWaiters, wakeStreamSlotWaiters } from './stream-slots.js';

/** What every endpoint of a sidecar shares. */
export interface EndpointContext {
  readonly tls: ClientTlsContext;
  readonly trustDomain: TrustDomain;
  /** Limit of one connection attempt (TCP + TLS). */
  readonly connectTimeoutMs: number;
  /** Per-request limit, also the HTTP/1.1 clients' header and body timeouts. */
  readonly timeoutMs: number;
  /** false: HTTP/1.1 keep-alive connections only (`outbound.http2: false`). */
  readonly http2: boolean;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly now?: () => Date;
}

/** What an endpoint knows of its set. */
export interface EndpointOwner {
  /** The route key (metric label). */
  readonly routeKey: string;
  /** The name the route's address gave (SNI); an IP literal for static addresses. */
  readonly servername: string;
  readonly accepts: ((id: SpiffeId) => boolean) | undefined;
  /** Called when the endpoint's ejection state changes (the set keeps its gauges and ejected count). */
  ejectionChanged(endpoint: Endpoint, ejected: boolean): void;
}

export type PeerTarget = ClientHttp2Session | Http1Client;

/** The credentials each session or HTTP/1.1 client presents to its peer (the SVID its connections were made with). */
const presented = new WeakMap<PeerTarget, Credentials>();

/** The credentials `target` presents to its peer; undefined for a target no endpoint made. */
export function credentialsOf(target: PeerTarget): Credentials | undefined {
  return presented.get(target);
}

/** Idle sessions close after this long (as the HTTP/1.1 connections' keep-alive, unless the peer announces less). */
const IDLE_MS = 60_000;
/**
 * HTTP/1.1 to a peer carries one request per connection at a time: at most this many connections per endpoint,
 * requests beyond them wait in arrival order. Well under the peer inbound's default share per caller identity
 * (`inbound.limits.maxConnectionsPerPeer`, 256), which a burst would otherwise run into and get 503s.
 */
const H1_CONNECTIONS = 64;
/** The most a peer's response head may decode to (SETTINGS_MAX_HEADER_LIST_SIZE, enforced by node:http2). */
const RESPONSE_HEADER_LIST_BYTES = 64 * 1024;
/** At most one stray-answer line per endpoint in this long. */
const STRAY_LOG_INTERVAL_MS = 10_000;
/** Header fields a peer's h2 response head may hold: 65,535 (the default list size) / 32 (the least a field costs). */
const RESPONSE_HEADER_PAIRS = 2048;

/** Last stream id of a GOAWAY the peer sent on a session: streams above it were never processed (safe to retry). */
const goawayLastStream = new WeakMap<ClientHttp2Session, number>();

/** The error node:http2 ended a session with, if any. */
const sessionErrors = new WeakMap<ClientHttp2Session, Error>();

export function sessionErrorOf(session: ClientHttp2Session): Error | undefined {
  return sessionErrors.get(session);
}

/** True when the peer announced on `session` that it did not and will not process stream `streamId`. */
export function refusedByGoaway(session: ClientHttp2Session, streamId: number | undefined): boolean {
  const last = goawayLastStream.get(session);
  return last !== undefined && streamId !== undefined && streamId > last;
}

export class Endpoint implements Candidate {
  readonly address: string;
  readonly port: number;
  /**
   * `host:port` (`[v6]:port`): the endpoint as every log line names it (field `endpoint`), and the origin its
   * sessions and HTTP/1.1 connections are opened to.
   */
  readonly authority: string;
  readonly health: EjectionState = newEjectionState();
  inflight = 0;
  /** The SPIFFE ID the peer at this endpoint last proved ('' before the first connection). */
  peerId = '';
  readonly #owner: EndpointOwner;
  readonly #context: EndpointContext;
  #session: ClientHttp2Session | undefined;
  #sessionContext: ClientContext | undefined;
  #http1Client: Http1Client | undefined;
  #http1Context: ClientContext | undefined;
  #http1 = false;
  #connecting: Promise<PeerTarget> | undefined;
  #removed = false;
  readonly #open = new Set<ClientHttp2Session>();
  /** performance.now() of the last stray-answer line (#strayAnswer). */
  #strayLoggedAt = Number.NEGATIVE_INFINITY;
  /** Retired HTTP/1.1 clients still finishing their requests, and their close. */
  readonly #retiring = new Map<Http1Client, Promise<void>>();

  constructor(address: string, port: number, owner: EndpointOwner, context: EndpointContext) {
    this.address = address;
    this.port = port;
    this.authority = formatHostPort({ host: address, port });
    this.#owner = owner;
    this.#context = context;
  }

  get removed(): boolean {
    return this.#removed;
  }

  /**
   * The session (or HTTP/1.1 client) to send a request on; a promise while connecting; undefined before the first
   * SVID. A failed connection rejects with PeerConnectError (its `phase` says why; no request byte was written); the
   * HTTP/1.1 client's connections dial when a request needs one, and fail that request with it.
   */
  target(): PeerTarget | Promise<PeerTarget> | undefined {
    const tls = this.#context.tls.current;
    if (tls === undefined) return undefined;
    const session = this.#session;
    if (session !== undefined) {
      if (!session.closed && !session.destroyed && this.#sessionContext === tls) return session;
      this.#session = undefined;
      if (!session.closed && !session.destroyed) session.close(); // made with retired credentials
    }
    if (!this.#context.http2 || this.#http1) return this.#http1For(tls);
    if (this.#connecting !== undefined) return this.#connecting;
    const connecting = this.#connect(tls);
    this.#connecting = connecting;
    const settle = () => {
      if (this.#connecting === connecting) this.#connecting = undefined;
    };
    connecting.then(settle, settle);
    return connecting;
  }

  /**
   * A response head arrived over this endpoint's HTTP/1.1 client. It carries most requests on kept connections,
   * so a probe of an ejected endpoint may make no connection at all: its answer ends the probe (and the ejection).
   */
  answered(): void {
    if (this.health.probing) this.#healthy();
  }

  /** An HTTP/1.1 request failed before its head on a kept connection (not at connect): a probe of it failed. */
  requestFailed(error: Error): void {
    if (this.health.probing && !(error instanceof PeerConnectError)) this.#unhealthy(error);
  }

  /**
   * `session` stopped carrying streams. `stalled`: a stream of it timed out and a PING went unacknowledged
   * (checkAlive): its streams can never be answered there, so it is destroyed (streams still on it end as a lost
   * connection).
   * `no_streams`: a request timed out waiting for a stream because the peer allows none (legal; some servers say so
   * while draining); `no_settings_ack`: because the peer never acknowledged this sidecar's SETTINGS (stream-slots.ts):
   * closed gracefully. Either way the next request connects again.
   */
  /**
   * A stream of `session` timed out: is the peer still there? A PING it does not acknowledge within MESH_PING_GRACE_MS
   * drops the session, so the next request connects again instead of waiting out its own timeout on a connection that
   * carries nothing: a peer that went silent with its connection open (a host gone without a FIN looks so for
   * minutes), or a session nghttp2 stopped reading (a frame or header block it refused, without a word to
   * node:http2). A peer that is only slow to answer acknowledges at once, and keeps its session.
   */
  checkAlive(session: ClientHttp2Session): void {
    whenSessionSilent(session, MESH_PING_GRACE_MS, () => this.abandon(session, 'stalled'));
  }

  abandon(session: ClientHttp2Session, why: 'stalled' | 'no_streams' | 'no_settings_ack'): void {
    if (session.destroyed || (why !== 'stalled' && session.closed)) return;
    if (this.#session === session) this.#session = undefined;
    const fields = { direction: 'outbound', endpoint: this.authority, peer: this.peerId || undefined };
    if (why === 'stalled') {
      this.#context.logger.warn(
        fields,
        'peer session carries nothing (a stream timed out and a PING went unacknowledged); dropped, the next request connects again',
      );
      session.destroy();
      return;
    }
    // The streams it still carries may finish; nothing new goes to it.
    this.#context.logger.warn(
      fields,
      why === 'no_streams'
        ? 'peer allows no stream on its session; the next request connects again'
        : "peer never acknowledged this sidecar's SETTINGS, so its session carries no stream; the next request connects again",
    );
    session.close();
    releaseStreamSlotWaiters(session);
  }

  /** New credentials: the next request connects again; streams in flight finish on the old session. */
  retire(): void {
    const session = this.#session;
    this.#session = undefined;
    this.#http1 = false;
    if (session !== undefined && !session.closed) session.close();
    if (session !== undefined) releaseStreamSlotWaiters(session);
    this.#retireHttp1();
  }

  /** The name no longer resolves to this address: drain (in-flight streams finish) and never connect again. */
  remove(): void {
    this.#removed = true;
    this.retire();
  }

  /** Graceful close within `deadline` (ms since epoch), then destroy. */
  async close(deadline: number): Promise<void> {
    this.remove();
    const sessions = [...this.#open];
    const closed = sessions.map(
      (s) => new Promise<void>((resolve) => (s.closed ? resolve() : s.close(() => resolve()))),
    );
    // Retired HTTP/1.1 clients finish their requests by this deadline too, then drop what is left, as sessions do.
    for (const client of this.#retiring.keys()) void client.close(deadline);
    // A farther deadline than one timer holds waits that long at most.
    const left = Math.min(Math.max(0, deadline - Date.now()), MAX_TIMER_MS);
    await Promise.race([
      Promise.allSettled([...closed, ...this.#retiring.values()]),
      new Promise((r) => setTimeout(r, left).unref()),
    ]);
    for (const session of sessions) session.destroy();
  }

  #connect(tls: ClientContext): Promise<PeerTarget> {
    return this.#dial(tls, ['h2', 'http/1.1']).then((connection) => {
      if (connection.protocol !== 'h2') {
        connection.socket.destroy();
        this.#http1 = true;
        return this.#http1For(tls);
      }
      const socket = connection.socket;
      socket.on('error', ignore); // the session reports socket errors from here on
      const session = h2Connect(`https://${this.authority}`, {
        createConnection: () => socket,
        // A response head decodes to at most this much (Envoy's default is 60 KiB): HPACK lets a peer name one 4 KiB
        // field 2,000 times in 6 KB of frames, and with node:http2's own bound (16 MiB) 40 such answers in flight
        // exhausted a 192 MB heap. Past it node:http2 resets the stream before any of it reaches JavaScript.
        settings: { enablePush: false, maxHeaderListSize: RESPONSE_HEADER_LIST_BYTES },
        // node:http2 resets a response head above 128 fields (its default) while the HTTP/1.1 hop takes any count
        // within its size limit. Every field costs at least 32 bytes of the list size (65,535 by default), so at
        // this count the size is the only limit, as on HTTP/1.1.
        maxHeaderListPairs: RESPONSE_HEADER_PAIRS,
      });
      this.#track(session, tls);
      retireAtExpiry(session, this.#untilExpiry(connection));
      return session;
    });
  }

  /**
   * One mTLS connection to this endpoint, for an HTTP/2 session or the HTTP/1.1 client alike: the peer's SPIFFE ID
   * checked before any request byte, no TLS session offered (Node skips the identity check on a resumed session),
   * and the endpoint's health kept by the outcome. A failure is a PeerConnectError (its phase says why).
   */
  #dial(tls: ClientContext, alpn: readonly string[]): Promise<PeerConnection> {
    const { trustDomain, connectTimeoutMs, now } = this.#context;
    return connectPeer({
      host: this.address,
      port: this.port,
      servername: this.#owner.servername,
      secureContext: tls.secureContext,
      trustDomain,
      accepts: this.#owner.accepts,
      alpn,
      timeoutMs: connectTimeoutMs,
      ...(now === undefined ? {} : { now }),
    }).then(
      (connection) => {
        this.#healthy();
        this.peerId = connection.peerIdString;
        return connection;
      },
      (error: unknown) => {
        if (error instanceof PeerConnectError) {
          // A wrong identity counts as any failed connect: behind a name, a stale record may point at another
          // workload, which never carries a stream and so would win every power-of-two pick. When every endpoint
          // presents it (a route expecting the wrong ID) all are ejected and the set still tries one, so the caller
          // keeps getting the identity error.
          this.#unhealthy(error);
          // The request that needed the connection logs the failure; the reason is counted once per handshake.
          const reason = peerConnectFailureReason(error.phase, error.cause);
          if (reason !== undefined) this.#context.metrics.tlsHandshakeFailures.inc({ direction: 'outbound', reason });
        }
        throw error;
      },
    );
  }

  #track(session: ClientHttp2Session, tls: ClientContext): void {
    this.#open.add(session);
    presented.set(session, tls.credentials);
    const current = !this.#removed && this.#context.tls.current === tls;
    if (current) {
      this.#session = session;
      this.#sessionContext = tls;
    }
    const forget = () => {
      if (this.#session === session) this.#session = undefined;
    };
    // Failures reach the streams in flight, which answer their callers; kept for requests that waited for a stream.
    session.on('error', (error: Error) => sessionErrors.set(session, error));
    session.once('goaway', (_code: number, lastStreamId: number) => {
      goawayLastStream.set(session, lastStreamId);
      forget();
      releaseStreamSlotWaiters(session);
    });
    session.once('close', () => {
      forget();
      this.#open.delete(session);
      releaseStreamSlotWaiters(session);
    });
    session.on('remoteSettings', () => wakeStreamSlotWaiters(session));
    session.once('localSettings', () => wakeStreamSlotWaiters(session));
    session.setTimeout(IDLE_MS, () => session.close());
    // Rotated or removed while connecting: the waiting requests use it, then it retires like the others.
    if (!current) setImmediate(() => session.close());
  }

  /**
   * The peer's HTTP/1.1 side sent an answer no request asked for (its client stops reusing connections a while):
   * counted, and logged at most once per STRAY_LOG_INTERVAL_MS for this endpoint.
   */
  #strayAnswer(): void {
    this.#context.metrics.streamsReset.inc({ direction: 'outbound', reason: 'peer_stray_answer' });
    const now = performance.now();
    if (now - this.#strayLoggedAt < STRAY_LOG_INTERVAL_MS) return;
    this.#strayLoggedAt = now;
    this.#context.logger.warn(
      { direction: 'outbound', endpoint: this.authority, peer: this.peerId || undefined, reason: 'peer_stray_answer' },
      `the peer sent an HTTP/1.1 answer no request asked for: answers on its kept connections may have reached the wrong requests; no connection to it is reused for ${STRAY_ANSWER_NO_REUSE_MS / 1000} s`,
    );
  }

  /** The HTTP/1.1 client for `tls`: a new one (the current one retired) once the credentials changed. */
  #http1For(tls: ClientContext): Http1Client {
    if (this.#http1Client !== undefined && this.#http1Context === tls) return this.#http1Client;
    this.#retireHttp1();
    const client: Http1Client = new Http1Client({
      authority: this.authority,
      maxConnections: H1_CONNECTIONS,
      timeoutMs: this.#context.timeoutMs,
      keepAliveMs: IDLE_MS,
      connect: () => this.#connectHttp1(tls, client),
      onStrayAnswer: () => this.#strayAnswer(),
    });
    this.#http1Client = client;
    this.#http1Context = tls;
    presented.set(client, tls.credentials);
    return client;
  }

  /**
   * A connection of `client`: a failure reaches the request that needed it as the PeerConnectError (connectPeer
   * bounds the wait). At the peer certificate's notAfter the client is retired (requests in flight finish, the next
   * ones open a new client and handshake), as an HTTP/2 session is closed then.
   */
  #connectHttp1(tls: ClientContext, client: Http1Client): Promise<TLSSocket> {
    return this.#dial(tls, ['http/1.1']).then((connection) => {
      atPeerExpiry(connection.socket, this.#untilExpiry(connection), () => {
        if (this.#http1Client === client) this.#retireHttp1();
      });
      return connection.socket;
    });
  }

  /** Milliseconds until the peer's certificate of `connection` expires (NaN when it could not be read). */
  #untilExpiry(connection: PeerConnection): number {
    return connection.notAfterMs - (this.#context.now?.() ?? new Date()).getTime();
  }

  /** The current HTTP/1.1 client takes no more requests; those it has finish (Endpoint.close sets a deadline). */
  #retireHttp1(): void {
    const client = this.#http1Client;
    if (client === undefined) return;
    this.#http1Client = undefined;
    this.#http1Context = undefined;
    const closing = client.close(Number.POSITIVE_INFINITY);
    this.#retiring.set(client, closing);
    void closing.then(() => this.#retiring.delete(client));
  }

  #healthy(): void {
    const wasEjected = this.health.ejections > 0;
    connectSucceeded(this.health);
    if (wasEjected) this.#owner.ejectionChanged(this, false);
  }

  #unhealthy(error: Error & { readonly code?: string | undefined }): void {
    if (connectFailed(this.health, performance.now())) {
      this.#context.metrics.endpointEjections.inc({ route: this.#owner.routeKey });
      this.#context.logger.warn(
        {
          direction: 'outbound',
          route: this.#owner.routeKey,
          endpoint: this.authority,
          failures: this.health.failures,
          ejectedForMs: Math.round(this.health.ejectedUntil - performance.now()),
          error: error.code ?? error.message,
        },
        'endpoint ejected after consecutive connect failures',
      );
      this.#owner.ejectionChanged(this, true);
    }
  }
}

function ignore(): void {}

/** Closes an HTTP/2 session gracefully at the peer's notAfter: streams in flight finish, new requests open another. */
function retireAtExpiry(session: ClientHttp2Session, inMs: number): void {
  atPeerExpiry(session, inMs, () => {
    if (!session.closed) session.close();
  });
}
