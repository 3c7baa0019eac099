// The gateway's hop into the mesh, in this process: each edge request goes straight onto the sidecar's outbound
// machinery (src/sidecar/outbound) — PeerSessions (mTLS with the gateway's SVID, the server checked by SPIFFE ID, one
// HTTP/2 session per endpoint, balancing, rotation) and H2Exchange (both bodies streamed with backpressure, safe
// retries, a cut message never framed as complete) — with one outbound route per gateway route (key = route name,
// the route's address and SPIFFE ID). The edge hands it each request with the origin passport it minted; the
// outbound's passport wrapper turns it into link + origin for the route's ID (the gateway is the voucher and the
// first actor). No listener and no second HTTP hop: nothing local can reach the mesh as the gateway.
import type { OutgoingHttpHeaders } from 'node:http';
import { constants as h2constants } from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Dispatcher, Pool } from 'undici';
import type { CredentialHolder } from '../agent/index.js';
import type { EndUser } from '../authn/end-user.js';
import { PASSPORT_HEADER, type SharedOrigin } from '../authn/passport/index.js';
import { formatHostPort, type RouteConfig, sidecarConfigFromObject } from '../config/index.js';
import { MeshauthError } from '../errors/index.js';
import { DataPlaneTelemetry } from '../sidecar/data-plane-telemetry.js';
import type { Endpoint } from '../sidecar/endpoints/endpoint.js';
import { isHopByHop } from '../sidecar/http-headers.js';
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
      forwardHttp1: (exchange, endpoint, pool) => this.#forwardHttp1(exchange, endpoint, pool),
    };
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
      this.#context,
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
    for (let i = 0; i < flat.length; i += 2) {
      const name = (flat[i] as string).toLowerCase();
      const value = flat[i + 1] as string;
      if (isHopByHop(name) || isIdentityHeader(name, false)) continue;
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

  /** The route's peer speaks HTTP/1.1 only (ALPN): undici's pool to it carries the request. */
  #forwardHttp1(exchange: H2Exchange<ResponseSink>, endpoint: Endpoint, pool: Pool): void {
    const { res } = exchange;
    const telemetry = this.#telemetry;
    const abort = new AbortController();
    res.on('close', () => {
      // nghttp2 reset the browser's stream for its body (shorter or longer than its content-length): a broken
      // upload, counted as H2Exchange counts one to an HTTP/2 peer, not a browser that left. Once the peer's head
      // went out the request is counted already (its status): the reset cuts that answer, a protocol_error stream
      // reset as a sidecar's ForwardHandler reports one, not a second request.
      if (
        !abort.signal.aborted &&
        !res.writableEnded &&
        exchange.req !== undefined &&
        exchange.req.complete !== true &&
        res.stream?.rstCode === h2constants.NGHTTP2_PROTOCOL_ERROR
      ) {
        if (res.headersSent) {
          telemetry.protocolReset(endpoint.peerId);
        } else {
          const error = new MeshauthError('MESHAUTH_ERR_BAD_REQUEST', 'request body incomplete', {
            reason: 'body_incomplete',
          });
          telemetry.rejected(endpoint.peerId, error, exchange.startedAt);
        }
      }
      abort.abort(); // the browser left: the peer's request goes too
    });
    // The balancer's load signal, as an HTTP/2 stream counts: from the request until its response body is over.
    endpoint.inflight += 1;
    let counted = true;
    const release = () => {
      if (!counted) return;
      counted = false;
      endpoint.inflight -= 1;
    };
    const reject = (error: MeshauthError) => {
      writeError(res, error);
      telemetry.rejected(endpoint.peerId, error, exchange.startedAt);
    };
    const answered = (response: Dispatcher.ResponseData): void => {
      if (res.writableEnded || abort.signal.aborted) {
        discard(response.body);
        return;
      }
      const flat: string[] = [];
      for (const [name, value] of Object.entries(response.headers)) {
        if (typeof value === 'string') flat.push(name, value);
        else if (Array.isArray(value)) for (const v of value) flat.push(name, v);
      }
      try {
        writeHeadOrClear(res, response.statusCode, this.#responseHeaders(flat, response.statusCode));
      } catch (cause) {
        // A head the browser's protocol cannot carry (a repeated single-value field on HTTP/2, status 600).
        discard(response.body);
        reject(
          new MeshauthError('MESHAUTH_ERR_UPSTREAM_PROTOCOL', 'peer sent an unusable response head', {
            reason: 'response_head',
            cause,
          }),
        );
        return;
      }
      telemetry.completed(endpoint.peerId, response.statusCode, exchange.startedAt);
      if (endsAtHead(exchange.method, response.statusCode)) {
        // Complete with its head (the sidecar's ForwardHandler.onHeaders rule). undici takes a 304's Content-Length,
        // the size of the representation it stands for, for a body it then misses and fails the body after the head:
        // piped, that failure reset the browser's connection before node:http had sent the buffered 304.
        discard(response.body);
        res.end();
        return;
      }
      pipeline(response.body, res as unknown as NodeJS.WritableStream).catch((error: unknown) => {
        res.destroy(new Error('response cut')); // never frame a truncated body as complete
        if (abort.signal.aborted) return; // the browser left; the peer did nothing wrong
        telemetry.reset(
          endpoint.peerId,
          'peer_response_truncated',
          'response truncated: the peer failed mid-body',
          error,
        );
      });
    };
    pool
      .request({
        path: exchange.path,
        method: exchange.method as 'GET',
        headers: exchange.headers as string[],
        body: (exchange.req as Readable | undefined) ?? null,
        signal: abort.signal,
      })
      .then(
        (response) => {
          response.body.once('close', release);
          endpoint.answered();
          answered(response);
        },
        (error: Error) => {
          release();
          if (abort.signal.aborted) return;
          endpoint.requestFailed(error);
          if (!exchange.retryHttp1(error, endpoint)) reject(classifyPeerError(error));
        },
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

/** Drops a response body nobody will read. undici's body emits an AbortError when destroyed unread: listened to. */
function discard(body: Readable): void {
  body.on('error', ignore);
  body.destroy();
}

function ignore(): void {}
