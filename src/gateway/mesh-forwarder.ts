// The gateway's hop into the mesh, in this process: each edge request goes straight onto the sidecar's outbound
// machinery (src/sidecar/outbound) — PeerSessions (mTLS with the gateway's SVID, the server checked by SPIFFE ID, one
// HTTP/2 session per endpoint, balancing, rotation) and H2Exchange (both bodies streamed with backpressure, safe
// retries, a cut message never framed as complete) — with one outbound route per gateway route (key = route name,
// the route's address and SPIFFE ID). The edge hands it each request with the origin passport it minted; the
// outbound's passport wrapper turns it into link + origin for the route's ID (the gateway is the voucher and the
// first actor). No listener and no second HTTP hop: nothing local can reach the mesh as the gateway. For an HTTP/1.1
// browser the peer's head is held until its first body byte or its end, so an answer cut before any body byte is
// answered 502 (504 for a peer gone silent), never a connection closed without a status line counted as the peer's.
import { IncomingMessage, type OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { constants as h2constants } from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import type { CredentialHolder } from '../agent/index.js';
import type { EndUser } from '../authn/end-user.js';
import { PASSPORT_HEADER, type SharedOrigin } from '../authn/passport/index.js';
import { formatHostPort, type RouteConfig, sidecarConfigFromObject } from '../config/index.js';
import { MeshauthError } from '../errors/index.js';
import { DataPlaneTelemetry } from '../sidecar/data-plane-telemetry.js';
import { bodyStillComing } from '../sidecar/early-response.js';
import type { Endpoint } from '../sidecar/endpoints/endpoint.js';
import { cutBeforeBody, unusableAnswerHead } from '../sidecar/forward-handler.js';
import { connectionTokens, isHopByHop } from '../sidecar/http-headers.js';
import type { Http1Client } from '../sidecar/http1-client.js';
import { isIdentityHeader } from '../sidecar/identity-headers.js';
import { handOutOrigin } from '../sidecar/inbound/vouch-for-user.js';
import {
  type CallerBody,
  type CallerResponse,
  H2Exchange,
  type H2ExchangeContext,
  outboundRetryCounters,
} from '../sidecar/outbound/h2-exchange.js';
import {
  hookRejection,
  type OnOutboundRequest,
  type OutboundRequestContext,
} from '../sidecar/outbound/outbound-hooks.js';
import { classifyPeerError } from '../sidecar/outbound/outbound-listener.js';
import { passportWrapper } from '../sidecar/outbound/passport-wrapper.js';
import { PeerSessions } from '../sidecar/outbound/peer-sessions.js';
import { PassportStore } from '../sidecar/passport-store.js';
import { unusableResponseHead } from '../sidecar/pipeline/rejections.js';
import type { Logger, Metrics } from '../telemetry/index.js';
import { type EdgeResponse, writeError } from './edge-responses.js';
import type { GatewayConfig, GatewayRoute } from './gateway-config.js';

const MAX_CACHED_ORIGINS = 10_000;

export interface ForwardRequest {
  readonly route: GatewayRoute;
  readonly method: string;
  /** Normalized path + raw query. */
  readonly target: string;
  /** Already cleaned by the edge (no cookies of ours, no Authorization unless opted in, no identity headers). */
  readonly headers: Record<string, string | string[]>;
  /** The body (`complete` only once it all arrived), or null. */
  readonly body: CallerBody | null;
  readonly user: EndUser | undefined;
}

/** What the edge writes the answer to: node:http's ServerResponse or node:http2's compat response. */
export type ResponseSink = CallerResponse & EdgeResponse;

export class MeshForwarder {
  readonly #holder: CredentialHolder;
  readonly #sessions: PeerSessions;
  readonly #routes: ReadonlyMap<string, RouteConfig>;
  readonly #telemetry: DataPlaneTelemetry;
  readonly #context: H2ExchangeContext<ResponseSink>;
  /** #context for HTTP/1.1 browsers: the peer's head held until its first body byte or its end (holdHead). */
  readonly #heldContext: H2ExchangeContext<ResponseSink>;
  readonly #wrap: OnOutboundRequest;
  readonly #store = new PassportStore();
  /** Cookie names a service may not set (the gateway's own): such Set-Cookie lines are dropped. */
  readonly #reservedCookie: (name: string) => boolean;
  readonly #now: () => Date;
  /**
   * The origin each end user (by claims and expiry: a session cookie decodes to a new EndUser per request) was last
   * given (sharedOrigin). It is addressed to the gateway itself and travels only inside a per-request link.
   */
  readonly #origins = new Map<string, SharedOrigin>();
  /** #responseHeaders for the HTTP/1.1 path's handlers (one function for all of them). */
  readonly #peerHeaders = (flat: readonly string[], status: number): OutgoingHttpHeaders =>
    this.#responseHeaders(flat, status);

  constructor(options: {
    readonly config: GatewayConfig;
    readonly holder: CredentialHolder;
    readonly metrics: Metrics;
    readonly logger: Logger;
    readonly now: () => Date;
    readonly reservedCookie: (name: string) => boolean;
  }) {
    const { config, holder, metrics, logger, now } = options;
    this.#holder = holder;
    this.#now = now;
    this.#reservedCookie = options.reservedCookie;
    const routes: Record<string, { address: string; ids: string[] }> = {};
    for (const route of config.routes) {
      routes[route.name] = { address: formatHostPort(route.address), ids: route.ids.map((id) => id.toString()) };
    }
    // The outbound part of a sidecar config, so routes, endpoints and timeouts read exactly as a sidecar's.
    const sidecarConfig = sidecarConfigFromObject(
      {
        trustDomain: config.trustDomain.name,
        ca: config.ca,
        inbound: { listen: '127.0.0.1:0', app: '127.0.0.1:1' },
        outbound: { listen: '127.0.0.1:0', routes, timeout: `${config.limits.upstreamTimeoutMs}ms` },
        admin: { listen: '127.0.0.1:0' },
      },
      `${config.source} (gateway outbound)`,
    );
    this.#routes = sidecarConfig.outbound.routes;
    this.#sessions = new PeerSessions({ config: sidecarConfig, holder, metrics, logger, now });
    this.#telemetry = new DataPlaneTelemetry('outbound', metrics, logger);
    this.#wrap = passportWrapper({ holder, store: this.#store, metrics, now });
    this.#context = {
      telemetry: this.#telemetry,
      drain: { draining: false }, // the public listener drains; its connections carry no keep-alive decision here
      logger,
      timeoutMs: sidecarConfig.outbound.timeoutMs,
      retries: outboundRetryCounters(metrics),
      writeHead: (res, status, headers) => writeHeadOrClear(res, status, this.#responseHeaders(headers, status)),
      answer: (res, error) => writeError(res, error),
      // HTTP/1.0 is refused at the edge, so every response here is framed; an error makes node:http2's compat
      // response reset with INTERNAL_ERROR (RST_STREAM(NO_ERROR) without END_STREAM would be ambiguous).
      cut: (res) => void res.destroy(new Error('response cut upstream')),
      forwardHttp1: (exchange, endpoint, client) => this.#forwardHttp1(exchange, endpoint, client),
    };
    // node:http sends a written head only with the first body byte or the end, so holding it costs an HTTP/1.1
    // browser nothing on the wire, and a peer's answer cut before any body byte becomes a 502 it can read instead of
    // a connection closed without a status line (counted as the peer's status). node:http2's compat response sends
    // HEADERS at writeHead: held there, a streaming answer's head would wait for its first event, so HTTP/2 browsers
    // get the head at once and a cut resets their stream.
    this.#heldContext = { ...this.#context, holdHead: true };
  }

  /** Sends the request into the mesh and streams the answer into `res`. Never throws: errors become responses. */
  forward(request: ForwardRequest, res: ResponseSink): void {
    const startedAt = performance.now();
    const credentials = this.#holder.current;
    const route = this.#routes.get(request.route.name);
    if (credentials === undefined || route === undefined) {
      this.#reject(res, new MeshauthError('MESHAUTH_ERR_NOT_READY', 'no SVID yet', { reason: 'not_ready' }), startedAt);
      return;
    }
    const headers: string[] = [];
    for (const name in request.headers) {
      const value = request.headers[name] as string | string[];
      if (typeof value === 'string') headers.push(name, value);
      else for (const v of value) headers.push(name, v);
    }
    headers.push('host', request.route.name);
    if (request.user !== undefined) headers.push(PASSPORT_HEADER, this.#originFor(request.user, credentials));
    const exchange = new H2Exchange(
      request.body ?? undefined,
      res,
      this.#sessions.setFor(route, request.route.name),
      request.method,
      request.target,
      headers,
      request.body !== null,
      startedAt,
      res instanceof ServerResponse ? this.#heldContext : this.#context,
    );
    let pending: void | Promise<void>;
    const context: OutboundRequestContext = { route, method: request.method, path: request.target, headers };
    try {
      pending = this.#wrap(context);
    } catch (error) {
      this.#reject(res, hookRejection(error), startedAt);
      return;
    }
    const start = () => {
      exchange.bindCredentials(context.binding);
      exchange.start();
    };
    if (pending === undefined) start();
    else pending.then(start, (error: unknown) => this.#reject(res, hookRejection(error), startedAt));
  }

  /** The endpoints the route's address has now (0 before its name first resolved): the gateway holds a session at each. */
  endpoints(routeName: string): number {
    const route = this.#routes.get(routeName);
    return route === undefined ? 0 : this.#sessions.setFor(route, routeName).endpoints.length;
  }

  async close(deadline: number): Promise<void> {
    await this.#sessions.close(deadline);
    this.#telemetry.close();
  }

  /**
   * The peer's response head for the edge: hop-by-hop headers, identity headers (a peer asserts no identity to a
   * browser; the HTTP/2 path drops them too) and Set-Cookie lines for the gateway's cookies dropped, and a 204's
   * Content-Length (no server may send one, and node:http2 resets a browser's stream for a non-zero one).
   */
  #responseHeaders(flat: readonly string[], status: number): OutgoingHttpHeaders {
    // No prototype: the peer names the fields (`__proto__`, `constructor`).
    const out: OutgoingHttpHeaders = Object.create(null);
    // Names an HTTP/1.1 peer's Connection header lists are hop-by-hop too (an HTTP/2 peer sends no Connection).
    const listed = connectionTokens(flat);
    for (let i = 0; i < flat.length; i += 2) {
      const name = (flat[i] as string).toLowerCase();
      const value = flat[i + 1] as string;
      if (isHopByHop(name) || isIdentityHeader(name, false) || listed?.has(name) === true) continue;
      if (status === 204 && name === 'content-length') continue;
      // A service must never plant or overwrite the gateway's session (session fixation by a compromised app).
      if (name === 'set-cookie' && this.#reservedCookie(value.slice(0, Math.max(0, value.indexOf('='))).trim())) {
        continue;
      }
      const existing = out[name];
      if (existing === undefined) out[name] = value;
      else if (Array.isArray(existing)) existing.push(value);
      else out[name] = [String(existing), value];
    }
    return out;
  }

  /** The route's peer speaks HTTP/1.1 only (ALPN): the endpoint's HTTP/1.1 client carries the request. */
  #forwardHttp1(exchange: H2Exchange<ResponseSink>, endpoint: Endpoint, client: Http1Client): void {
    client.dispatch(
      { method: exchange.method, path: exchange.path, headers: exchange.headers, body: exchange.req ?? null },
      new PeerAnswer(exchange, endpoint, this.#telemetry, this.#peerHeaders, exchange.res instanceof ServerResponse),
    );
  }

  #reject(res: ResponseSink, error: MeshauthError, startedAt: number): void {
    writeError(res, error);
    this.#telemetry.rejected('', error, startedAt);
  }

  #originFor(user: EndUser, credentials: NonNullable<CredentialHolder['current']>): string {
    const key = `${user.expiresAt}|${JSON.stringify(user.claims)}`;
    const previous = this.#origins.get(key);
    const shared = handOutOrigin(previous, user, credentials.svid, this.#now(), this.#store);
    if (shared !== previous) {
      if (this.#origins.size >= MAX_CACHED_ORIGINS) this.#origins.clear();
      this.#origins.set(key, shared);
    }
    return shared.received.origin;
  }
}

/**
 * Writes a response head; when Node refuses it (an invalid status, a repeated single-value field on HTTP/2), the
 * fields it had already taken are removed before the error goes on, so the error answer carries none of them.
 */
function writeHeadOrClear(res: ResponseSink, status: number, headers: OutgoingHttpHeaders): void {
  try {
    res.writeHead(status, headers);
  } catch (error) {
    const taken = res as unknown as { getHeaderNames?(): string[]; removeHeader?(name: string): void };
    for (const name of taken.getHeaderNames?.() ?? []) taken.removeHeader?.(name);
    throw error;
  }
}

/** A response that has no content by definition (RFC 9110 §6.4.1): 204, 304, or the answer to a HEAD. */
function endsAtHead(method: string, status: number): boolean {
  return status === 204 || status === 304 || method === 'HEAD';
}

/**
 * One request to an HTTP/1.1 peer, as its client's dispatch handler: the answer streamed into the edge response with
 * backpressure; a failure before the head answered (or retried by the exchange), one after it cutting the response
 * (never framed as complete). For an HTTP/1.1 browser the head is held until the first body byte or the end, so a
 * failure before either is answered too. A browser that leaves ends the peer's exchange and its connection (no other
 * is opened in its place); one that left while the request waited for a connection has it dropped unsent.
 */
class PeerAnswer implements Dispatcher.DispatchHandler {
  readonly #exchange: H2Exchange<ResponseSink>;
  readonly #endpoint: Endpoint;
  readonly #telemetry: DataPlaneTelemetry;
  readonly #headers: (flat: readonly string[], status: number) => OutgoingHttpHeaders;
  #abort: ((error?: Error) => void) | undefined;
  #resume: (() => void) | undefined;
  #waitingDrain = false;
  /** The browser's response closed (finished, or the browser left). */
  #closed = false;
  /** Its request went to a retry, whose own PeerAnswer reports from then on. */
  #handedOver = false;
  /** Answered, failed or ended at its head: nothing more of the peer reaches the browser. */
  #done = false;
  #headSent = false;
  /** The browser's response is node:http's, which sends a written head only with its first body byte or its end. */
  readonly #hold: boolean;
  /** The peer's head, held (#hold) until its first body byte or its end, and its status. */
  #held: OutgoingHttpHeaders | undefined;
  #heldStatus = 0;
  /** When the held head arrived (performance.now()): the request's duration ends there, not at the first body byte. */
  #heldAt = 0;
  /** Holds one of the endpoint's requests in flight (the balancer's load signal, as an HTTP/2 stream counts). */
  #counted = true;

  constructor(
    exchange: H2Exchange<ResponseSink>,
    endpoint: Endpoint,
    telemetry: DataPlaneTelemetry,
    headers: (flat: readonly string[], status: number) => OutgoingHttpHeaders,
    hold: boolean,
  ) {
    this.#exchange = exchange;
    this.#endpoint = endpoint;
    this.#telemetry = telemetry;
    this.#headers = headers;
    this.#hold = hold;
    endpoint.inflight += 1;
    exchange.res.on('close', () => this.#responseClosed());
  }

  onConnect(abort: (error?: Error) => void): void {
    // Dropped before it is written: the connection serves the next request instead of closing with this one.
    if (this.#closed) throw new Error('the browser left');
    this.#abort = abort;
  }

  onHeaders(status: number, rawHeaders: Buffer[], resume: () => void): boolean {
    const { res, method } = this.#exchange;
    const endpoint = this.#endpoint;
    endpoint.answered();
    if (this.#done || this.#closed || res.writableEnded) {
      this.#cancel();
      return false;
    }
    if (unusableAnswerHead(status, rawHeaders) !== undefined) {
      // Refused as the sidecars refuse it (a status above 599, a coding besides chunked).
      this.#cancel();
      this.#reject(unusableResponseHead());
      return false;
    }
    // The client hands each field as a latin1 string, which toString gives back as it is (a Buffer would decode).
    const flat = rawHeaders.map((field) => field.toString('latin1'));
    const headers = this.#headers(flat, status);
    this.#resume = resume;
    if (this.#hold && !endsAtHead(method, status)) {
      // Written with the first body byte or the end, which llhttp reports in the same parse when they came with the
      // head (the usual case). The client's body timeout bounds the wait.
      this.#held = headers;
      this.#heldStatus = status;
      this.#heldAt = performance.now();
      return true;
    }
    if (!this.#writeHead(status, headers)) return false;
    if (endsAtHead(method, status)) {
      // Complete with its head (the sidecar's ForwardHandler.onHeaders rule); the client reads no body for these.
      this.#done = true;
      res.end();
    }
    return true;
  }

  /**
   * Writes the peer's head to the browser and counts the request (timed to `headAt` when the head was held); false
   * when it cannot be sent (answered 502).
   */
  #writeHead(status: number, headers: OutgoingHttpHeaders, headAt?: number): boolean {
    const { res, req, startedAt } = this.#exchange;
    // Answered before the browser's upload ended: the rest is read and dropped and the connection closed after this
    // answer (the public listener's linger), so an HTTP/1.1 browser is told.
    if (req instanceof IncomingMessage && bodyStillComing(req)) headers.connection = 'close';
    try {
      writeHeadOrClear(res, status, headers);
    } catch (cause) {
      // A head the browser's protocol cannot carry (a repeated single-value field on HTTP/2, status 600).
      this.#cancel();
      this.#reject(unusableResponseHead({ cause }));
      return false;
    }
    this.#headSent = true;
    this.#telemetry.completed(this.#endpoint.peerId, status, startedAt, headAt);
    return true;
  }

  /** The held head goes out (its first body byte or its end came); false when it cannot be sent (answered 502). */
  #writeHeld(): boolean {
    const headers = this.#held as OutgoingHttpHeaders;
    this.#held = undefined;
    return this.#writeHead(this.#heldStatus, headers, this.#heldAt);
  }

  onData(chunk: Buffer): boolean {
    if (this.#done) return true;
    if (this.#held !== undefined && !this.#writeHeld()) return false;
    const res = this.#exchange.res;
    const written = res.write(chunk);
    if (!written && !this.#waitingDrain) {
      this.#waitingDrain = true;
      res.once('drain', () => {
        this.#waitingDrain = false;
        this.#resume?.();
      });
    }
    return written;
  }

  onComplete(): void {
    this.#release();
    if (this.#done) return;
    if (this.#held !== undefined && !this.#writeHeld()) return;
    this.#done = true;
    this.#exchange.res.end();
  }

  onError(error: Error): void {
    this.#release();
    if (this.#done) return;
    this.#done = true;
    const exchange = this.#exchange;
    if (this.#held !== undefined) {
      // The peer answered (so nothing is retried), and none of its answer reached the browser: answered with the
      // error it is and counted as that, not as the held status.
      this.#held = undefined;
      const { res } = exchange;
      if (res.writableEnded || res.destroyed === true) {
        // Answered or gone meanwhile (the edge's 400 for an upload that broke the parser): counted as the peer's
        // status, as a head written is.
        this.#telemetry.completed(this.#endpoint.peerId, this.#heldStatus, exchange.startedAt, this.#heldAt);
        return;
      }
      this.#reject(cutBeforeBody(error, 'the gateway'));
      return;
    }
    if (this.#headSent) {
      exchange.res.destroy(new Error('response cut')); // never frame a truncated body as complete
      if (this.#closed) return; // the browser left; the peer did nothing wrong
      this.#telemetry.reset(
        this.#endpoint.peerId,
        'peer_response_truncated',
        'response truncated: the peer failed mid-body',
        error,
      );
      return;
    }
    if (this.#closed) return;
    this.#endpoint.requestFailed(error);
    if (exchange.retryHttp1(error, this.#endpoint)) {
      // The retry's own answer handler watches the browser from here on: one report of what happens to it, not two.
      this.#handedOver = true;
      return;
    }
    this.#reject(classifyPeerError(error));
  }

  #responseClosed(): void {
    if (this.#handedOver) return;
    const { res, req } = this.#exchange;
    if (this.#held !== undefined) {
      // The browser left while the peer's head was held for its body: counted with the peer's status, as a head
      // written is.
      this.#held = undefined;
      this.#telemetry.completed(this.#endpoint.peerId, this.#heldStatus, this.#exchange.startedAt, this.#heldAt);
    }
    // nghttp2 reset the browser's stream for its body (shorter or longer than its content-length): a broken upload,
    // counted as H2Exchange counts one to an HTTP/2 peer, not a browser that left. Once the peer's head went out the
    // request is counted already (its status): the reset cuts that answer, a protocol_error stream reset as a
    // sidecar's ForwardHandler reports one, not a second request.
    if (
      !this.#closed &&
      !res.writableEnded &&
      req !== undefined &&
      req.complete !== true &&
      res.stream?.rstCode === h2constants.NGHTTP2_PROTOCOL_ERROR
    ) {
      if (res.headersSent) {
        this.#telemetry.protocolReset(this.#endpoint.peerId);
      } else {
        const error = new MeshauthError('MESHAUTH_ERR_BAD_REQUEST', 'request body incomplete', {
          reason: 'body_incomplete',
        });
        this.#telemetry.rejected(this.#endpoint.peerId, error, this.#exchange.startedAt);
      }
    }
    this.#closed = true;
    // The browser left: the peer's request goes too, with its connection.
    if (!this.#done) this.#abort?.(new Error('the browser left'));
  }

  /** Ends the peer's exchange (and its connection): its answer is not wanted. */
  #cancel(): void {
    this.#done = true;
    this.#abort?.(new Error('answer not wanted'));
  }

  #reject(error: MeshauthError): void {
    writeError(this.#exchange.res, error);
    this.#telemetry.rejected(this.#endpoint.peerId, error, this.#exchange.startedAt);
  }

  #release(): void {
    if (!this.#counted) return;
    this.#counted = false;
    this.#endpoint.inflight -= 1;
  }
}
