// The gateway's request pipeline (one instance per gateway): sign-in callback and logout (sign-in-flow.ts), route
// match on the normalized path, who the caller is (a JWT-SVID or an API bearer token, else the browser session,
// renewed before its access token expires: browser-sessions.ts), the cross-site check for cookie-authenticated
// state changes, the route's login rule (navigation → 302 to the provider, API call → 401 with WWW-Authenticate,
// never a redirect), the route's requirements, the policy file (default deny), then the mesh. Strip, then set:
// the gateway's cookies, Authorization (unless the route opts in), identity and forwarding headers never pass; the
// end user travels only as a passport the gateway mints. Once routed, a request takes a place of its client's share
// of the route (client-share.ts) until its answer is over; past the share it is refused unprocessed.

import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { bearerChallenge } from '../authn/bearer-challenge.js';
import type { EndUser } from '../authn/end-user.js';
import { endUserFromClaims } from '../authn/end-user.js';
import type { EndUserVerifier, VerifyOptions } from '../authn/end-user-verifier.js';
import { extractBearer } from '../authn/extract-bearer.js';
import {
  type AuthzRequest,
  type CompiledPolicy,
  decide,
  decideWithMethodOverride,
  denyAuditRecord,
  EDGE_LOGIN_RULES,
  EDGE_REQUIREMENT_RULES,
  EDGE_RULES,
  type EdgeRefusalRule,
  normalizePath,
} from '../authz/index.js';
import { isMeshauthError, MeshauthError } from '../errors/index.js';
import { clientAddress, clientSourceKey } from '../platform/index.js';
import { connectionListed, isForwardingHeader, isHopByHop, isTerminatedClaim } from '../sidecar/http-headers.js';
import { isIdentityHeader } from '../sidecar/identity-headers.js';
import { h2RequestBody } from '../sidecar/inbound/request-body.js';
import { checkH1Head, checkH2Head, MAX_FORWARDED_REQUEST_FIELDS } from '../sidecar/inbound/request-checks.js';
import type { CallerBody } from '../sidecar/outbound/h2-exchange.js';
import { refuseStream } from '../sidecar/refused-stream.js';
import { type Logger, type Metrics, RateLimitedLog } from '../telemetry/index.js';
import { BrowserSessions } from './browser-sessions.js';
import { ClientShare, clientShareOf } from './client-share.js';
import { cookieHeaderWithout, parseCookies } from './cookies.js';
import { recordEdgeRefusal, refusalRule } from './edge-refusal.js';
import type { EdgeRequestTelemetry } from './edge-request-telemetry.js';
import { type EdgeResponse, loginRequired, withCookies, writeError } from './edge-responses.js';
import { checkClaimSize, unmetRequirement } from './edge-rule.js';
import {
  type ApiIssuerSettings,
  CALLBACK_PATH,
  type GatewayConfig,
  type GatewayRoute,
  LOGOUT_PATH,
  type OidcSettings,
  RESERVED_PREFIX,
  reservedCookieTest,
} from './gateway-config.js';
import type { JwtSvidVerifier } from './jwt-svid-verifier.js';
import { LoginStateCodec } from './login-state.js';
import type { MeshForwarder, ResponseSink } from './mesh-forwarder.js';
import type { OidcRelyingParty } from './oidc-relying-party.js';
import { isCrossSite } from './request-kind.js';
import { RouteTable } from './route-table.js';
import { SessionCodec, type SessionData } from './session.js';
import type { SessionKeyRing } from './session-keys.js';
import { SignInFlow } from './sign-in-flow.js';

/** What the handler reads of a request: node:http's IncomingMessage or node:http2's compat request. */
export interface EdgeRequest extends Readable {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly headers: IncomingHttpHeaders;
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  /** The header lines as received (on HTTP/2 the decoded list, pseudo-headers included). */
  readonly rawHeaders: readonly string[];
  /** True once the whole body arrived (on HTTP/2 also after a reset: see requestBody). */
  readonly complete: boolean;
  readonly socket: { readonly remoteAddress?: string | undefined } | null;
  /** HTTP/2 only: the stream under node:http2's compat request. */
  readonly stream?: ServerHttp2Stream | undefined;
}

export type EdgeResponseSink = EdgeResponse & ResponseSink;

export interface EdgeHandlerOptions {
  readonly config: GatewayConfig;
  readonly forwarder: MeshForwarder;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly now: () => Date;
  readonly keyRing?: () => SessionKeyRing;
  readonly relyingParty?: OidcRelyingParty;
  readonly apiVerifier?: EndUserVerifier;
  readonly jwtSvidVerifier?: JwtSvidVerifier;
  readonly policy?: () => CompiledPolicy;
  /** The port the public listener is bound to (policy `to.ports`). */
  readonly port: () => number;
  /** The edge's request counter: told each request's route. */
  readonly requests?: EdgeRequestTelemetry;
}

type Caller =
  | { readonly user: EndUser; readonly via: 'bearer'; readonly token: string }
  | { readonly user: EndUser; readonly via: 'session'; readonly session: SessionData }
  | undefined;

// Request headers that never reach the mesh from outside: hop-by-hop (isHopByHop, the sidecar's list), the host
// (the gateway names the service), credentials (they stop here), identity headers (only sidecars set them;
// src/sidecar/identity-headers.ts owns their names), forwarding and client-certificate headers (isForwardingHeader:
// the gateway sets its own X-Forwarded-For/-Host/-Proto) and names with `_` (#forwardHeaders).
const DROP: ReadonlySet<string> = new Set(['host', 'authorization', 'cookie']);
/** An API caller's token becomes an origin passport (MeshForwarder): one past its exp has no lifetime left to give. */
const FOR_PASSPORT: VerifyOptions = { forPassport: true };

export class EdgeHandler {
  readonly #config: GatewayConfig;
  readonly #forwarder: MeshForwarder;
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  readonly #now: () => Date;
  readonly #routes: RouteTable;
  readonly #sessions: BrowserSessions | undefined;
  readonly #signIn: SignInFlow | undefined;
  readonly #oidc: OidcSettings | undefined;
  readonly #api: EndUserVerifier | undefined;
  readonly #jwtSvids: JwtSvidVerifier | undefined;
  readonly #apiClaims: ReadonlyMap<string, readonly string[]>;
  readonly #policy: (() => CompiledPolicy) | undefined;
  readonly #port: () => number;
  readonly #requests: EdgeRequestTelemetry | undefined;
  /** Clients can send identity headers on every request: one line per 10 s, the rest counted. */
  readonly #strippedLog: RateLimitedLog;
  readonly #reservedCookie: (name: string) => boolean;
  readonly #shares: ClientShare;

  constructor(options: EdgeHandlerOptions) {
    const { config } = options;
    this.#config = config;
    this.#reservedCookie = reservedCookieTest(config);
    this.#forwarder = options.forwarder;
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#now = options.now;
    this.#routes = new RouteTable(config.routes);
    this.#oidc = config.oidc;
    this.#api = options.apiVerifier;
    this.#jwtSvids = options.jwtSvidVerifier;
    this.#policy = options.policy;
    this.#port = options.port;
    this.#requests = options.requests;
    this.#strippedLog = new RateLimitedLog(options.logger, options.metrics, 'identity_headers_stripped', 10_000);
    this.#shares = new ClientShare({
      metrics: options.metrics,
      logger: options.logger,
      now: performance.now.bind(performance),
    });
    this.#apiClaims = new Map(config.apiIssuers.map((a: ApiIssuerSettings) => [a.issuer, a.claims]));
    if (options.keyRing !== undefined) {
      const codec = new SessionCodec({
        ring: options.keyRing,
        cookieName: config.session.cookieName,
        idleTimeoutMs: config.session.idleTimeoutMs,
        absoluteTimeoutMs: config.session.absoluteTimeoutMs,
        signedInBy: config.oidc === undefined ? '' : `${config.oidc.issuer} ${config.oidc.clientId}`,
        maxCookieBytes: sessionCookieBudget(config.limits.maxHeaderBytes),
      });
      const sessions = new BrowserSessions({
        codec,
        relyingParty: options.relyingParty,
        oidc: config.oidc,
        metrics: options.metrics,
        logger: options.logger,
        keepTokens: config.routes.some((r) => r.forwardToken),
      });
      this.#sessions = sessions;
      if (options.relyingParty !== undefined && config.oidc !== undefined) {
        this.#signIn = new SignInFlow({
          relyingParty: options.relyingParty,
          oidc: config.oidc,
          logins: new LoginStateCodec(options.keyRing, config.session.cookieName),
          sessions,
          metrics: options.metrics,
          logger: options.logger,
          now: options.now,
          callbackPerMinute: config.limits.callbackPerMinute,
          maxClaimBytes: config.limits.maxClaimBytes,
        });
      }
    }
  }

  /** Handles one request; never throws (every failure is an answer, a metric and one log line). */
  handle(req: EdgeRequest, res: EdgeResponseSink): void {
    this.#handle(req, res).catch((error: unknown) => {
      const known = isMeshauthError(error)
        ? error
        : new MeshauthError('MESHAUTH_ERR_UPSTREAM_UNAVAILABLE', 'gateway request failed', { cause: error });
      if (!isMeshauthError(error)) this.#logger.error({ err: (error as Error)?.message }, 'gateway request failed');
      writeError(res, known);
    });
  }

  async #handle(req: EdgeRequest, res: EdgeResponseSink): Promise<void> {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const headers = req.headers;
    if (req.httpVersionMajor === 1 && req.httpVersionMinor === 0) {
      // An HTTP/1.0 response without Content-Length ends with the connection, so a response the service cuts would
      // reach the client looking complete: refused, as Envoy does by default.
      const refusal = new MeshauthError('MESHAUTH_ERR_HTTP_VERSION', 'HTTP/1.0 request', { reason: 'http_1_0' });
      req.resume();
      this.#refuse(refusal, req);
      writeError(res, refusal, { upgrade: 'HTTP/1.1', connection: 'Upgrade, close' });
      return;
    }
    // The sidecar's head checks (request-checks.ts): one Host (or :authority, agreeing with host) that is
    // host[:port], origin-form target, no coding but chunked, and on HTTP/2 the header-list limit node:http2 only
    // advertises (node:http enforces maxHeaderSize on HTTP/1.1 itself). The route, the policy, X-Forwarded-Host and
    // the service then all read the same host.
    const refusal =
      req.httpVersionMajor === 2
        ? checkH2Head(headers, req.rawHeaders, this.#config.limits.maxHeaderBytes, MAX_FORWARDED_REQUEST_FIELDS)
        : checkH1Head(url, req.rawHeaders, MAX_FORWARDED_REQUEST_FIELDS);
    if (refusal !== undefined) {
      req.resume();
      this.#refuse(refusal, req);
      // Past 1,000 fields Node 20's view of an HTTP/1.1 head is cut short, its framing headers maybe among what was
      // cut: nothing more is read from that connection.
      const close = refusal.reason === 'header_count' && req.httpVersionMajor === 1;
      writeError(res, refusal, close ? { connection: 'close' } : {});
      return;
    }
    const authority = (headers[':authority'] as string | undefined) ?? headers.host ?? '';
    const host = hostOf(authority);
    const queryAt = url.indexOf('?');
    const rawPath = queryAt === -1 ? url : url.slice(0, queryAt);
    if (rawPath === CALLBACK_PATH || rawPath === LOGOUT_PATH) {
      const signIn = this.#signIn;
      if (signIn === undefined) {
        req.resume();
        const error = new MeshauthError('MESHAUTH_ERR_EDGE_NO_ROUTE', 'no browser sign-in configured', {
          reason: 'no_sign_in',
        });
        this.#refuse(error, req);
        writeError(res, error);
        return;
      }
      if (rawPath === CALLBACK_PATH) return signIn.callback(req, res, method, queryAt === -1 ? '' : url.slice(queryAt));
      return signIn.logout(req, res, method);
    }
    if (rawPath.startsWith(RESERVED_PREFIX)) {
      // The gateway's own namespace: never forwarded, so no service can answer in the gateway's name there.
      req.resume();
      const error = new MeshauthError('MESHAUTH_ERR_EDGE_NO_ROUTE', `reserved path ${rawPath.slice(0, 64)}`, {
        reason: 'reserved_path',
      });
      this.#refuse(error, req);
      writeError(res, error);
      return;
    }

    const located = this.#locate(url, host);
    if ('error' in located) {
      req.resume();
      this.#refuse(located.error, req, located.rule);
      writeError(res, located.error);
      return;
    }
    const { normalized, route } = located;
    this.#requests?.route(res, route.name);
    const place = this.#shares.enter(clientSourceKey(req.socket?.remoteAddress), route.name, () =>
      clientShareOf(this.#forwarder.endpoints(route.name)),
    );
    if (typeof place !== 'string') {
      refuseOverShare(req, res, place);
      return;
    }
    res.on('close', () => this.#shares.leave(place));
    const cookies = parseCookies(headers.cookie);
    const setCookies: string[] = [];
    let caller: Caller;
    try {
      // A `login: none` route carries no user and no passport: its session or bearer token is not even read, so
      // a signed-in browser's identity never reaches a public page, and a bad token there is no reason to refuse.
      caller =
        route.login === 'none' ? undefined : await this.#authenticate(headers, req.rawHeaders, cookies, setCookies);
    } catch (error) {
      if (!isMeshauthError(error)) throw error;
      this.#deny(route, EDGE_RULES.authentication, error, req);
      const challenge = bearerChallenge(error);
      writeError(res, error, { 'www-authenticate': challenge.headers['www-authenticate'] as string });
      return;
    }
    if (caller?.via === 'session' && isCrossSite(method, headers, this.#signIn?.ownOrigin ?? `https://${authority}`)) {
      const error = new MeshauthError('MESHAUTH_ERR_CROSS_SITE_REQUEST', 'cross-site state-changing request', {
        reason: 'cross_site',
      });
      this.#deny(route, EDGE_RULES.crossSite, error, req);
      writeError(res, error, withCookies(setCookies));
      return;
    }
    const user = caller?.user;
    if (user === undefined && route.login === 'required') {
      if (this.#signIn !== undefined) {
        await this.#signIn.loginRequired(req, res, route, { method, url, host }, setCookies);
        return;
      }
      this.#metrics.gatewayDecisions.inc({ route: route.name, decision: 'login', rule: EDGE_RULES.loginApi });
      writeError(res, loginRequired(), { 'www-authenticate': 'Bearer realm="meshauth"', ...withCookies(setCookies) });
      return;
    }
    if (user !== undefined) {
      const unmet = unmetRequirement(route, user, this.#oidc?.rolesClaim ?? 'roles');
      if (unmet !== undefined) {
        const error = new MeshauthError('MESHAUTH_ERR_FORBIDDEN', `route ${route.name} requires ${unmet}`, {
          reason: 'edge_requirement',
        });
        this.#deny(route, EDGE_REQUIREMENT_RULES[unmet], error, req, user);
        writeError(
          res,
          error,
          {
            ...withCookies(setCookies),
            ...(caller?.via === 'bearer' && unmet === 'scopes'
              ? {
                  'www-authenticate': `Bearer realm="meshauth", error="insufficient_scope", scope="${route.scopes.join(' ')}"`,
                }
              : {}),
          },
          { rule: EDGE_REQUIREMENT_RULES[unmet] },
        );
        return;
      }
    }
    // What the service will get: the edge policy's header conditions read exactly that, so none is met (or missed) by a
    // header the gateway drops or replaces (a client's X-Forwarded-For, its Host, the session cookie).
    const { headers: out, spoofed } = this.#forwardHeaders(req, authority, cookies, route, caller);
    const policy = this.#policy?.();
    if (policy !== undefined) {
      const request: AuthzRequest = {
        method,
        path: normalized.path,
        host: authority,
        port: this.#port(),
        headers: out,
        sourceIp: clientAddress(req.socket?.remoteAddress) ?? '',
        user: user?.claims,
        now: this.#now(),
      };
      // A POST with `?_method=DELETE` is also decided as the DELETE that method-override middleware makes of it.
      const { request: decided, decision } = decideWithMethodOverride(policy, request, normalized.query, decide);
      this.#metrics.authzDecisions.inc({ decision: decision.decision, rule: decision.rule });
      if (decision.decision === 'deny') {
        this.#logger.info({ ...denyAuditRecord(decided, decision), route: route.name }, 'gateway deny');
        this.#metrics.gatewayDecisions.inc({ route: route.name, decision: 'deny', rule: decision.rule });
        if (decision.enforced) {
          writeError(
            res,
            new MeshauthError('MESHAUTH_ERR_FORBIDDEN', 'denied by the edge policy', { reason: 'policy_denied' }),
            withCookies(setCookies),
            policy.exposeRuleNames ? { rule: decision.rule } : undefined,
          );
          return;
        }
      } else {
        this.#metrics.gatewayDecisions.inc({ route: route.name, decision: 'allow', rule: decision.rule });
      }
    } else {
      this.#metrics.gatewayDecisions.inc({ route: route.name, decision: 'allow', rule: EDGE_LOGIN_RULES[route.login] });
    }

    // Counted once the request goes on, as at the sidecars: the identity headers were removed before the service.
    if (spoofed) this.#reportSpoofed(req, route);
    const body = hasBody(req) ? requestBody(req) : null;
    if (body === null) req.resume();
    if (setCookies.length > 0) {
      // The session was renewed or re-stamped: the cookies ride on the service's answer. That answer now carries
      // the user's credential, so no cache may keep it, whatever the service said: a shared cache in front of the
      // gateway would hand a `public` answer, session cookie included, to every later visitor. Every field a cache
      // reads goes, not only Cache-Control: a CDN obeys its targeted field before it (isCachingField).
      const writeHead = res.writeHead.bind(res);
      res.writeHead = (status: number, h: OutgoingHttpHeaders) => {
        const existing = h['set-cookie'];
        const merged = [
          ...setCookies,
          ...(existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)]),
        ];
        const head: OutgoingHttpHeaders = Object.create(null);
        for (const name in h) if (!isCachingField(name.toLowerCase())) head[name] = h[name];
        return writeHead(status, { ...head, 'set-cookie': merged, 'cache-control': 'no-store' });
      };
    }
    await this.#forwarder.forward({ route, method, target: normalized.target, headers: out, body, user }, res);
  }

  /**
   * A Bearer token first (never combined with the cookie), then the session. Another `Authorization` scheme (Basic,
   * which a browser sends on its own once a service behind the gateway asked for it; Negotiate) is no credential of
   * the gateway's: it is dropped before the mesh (DROP) and the session decides, as without the header.
   */
  async #authenticate(
    headers: IncomingHttpHeaders,
    rawHeaders: readonly string[],
    cookies: ReadonlyMap<string, string>,
    setCookies: string[],
  ): Promise<Caller> {
    // From the received list: `headers` holds only the first of repeated `authorization` lines, and two are refused
    // before either is verified, as at the sidecars (so is a JWT under another scheme or none).
    const token =
      headers.authorization === undefined
        ? undefined
        : this.#api === undefined
          ? extractBearer(rawHeaders)
          : this.#api.bearerOf(rawHeaders);
    if (token !== undefined) {
      if (this.#jwtSvids?.claims(unverifiedIssuer(token)) === true) {
        // An origin passport is minted for the caller: a token past its exp (within the skew) is refused as expired.
        return { user: await this.#jwtSvids.verify(token, FOR_PASSPORT), via: 'bearer', token };
      }
      if (this.#api === undefined) {
        throw new MeshauthError('MESHAUTH_ERR_TOKEN_INVALID', 'no apiIssuers configured', { reason: 'no_issuer' });
      }
      const user = await this.#api.verify(token, FOR_PASSPORT);
      const scoped = endUserFromClaims({ ...user.claims, exp: user.expiresAt }, this.#apiClaims.get(user.iss) ?? []);
      if (scoped === undefined) throw new MeshauthError('MESHAUTH_ERR_TOKEN_INVALID', 'no subject', { reason: 'sub' });
      checkClaimSize(scoped, this.#config.limits.maxClaimBytes, 'MESHAUTH_ERR_TOKEN_INVALID');
      return { user: scoped, via: 'bearer', token };
    }
    const sessions = this.#sessions;
    if (sessions === undefined) return undefined;
    const resolved = await sessions.resolve(cookies, Math.floor(this.#now().getTime() / 1000), setCookies);
    return resolved === undefined ? undefined : { user: resolved.user, via: 'session', session: resolved.session };
  }

  #forwardHeaders(
    req: EdgeRequest,
    authority: string,
    cookies: ReadonlyMap<string, string>,
    route: GatewayRoute,
    caller: Caller,
  ): { headers: Record<string, string | string[]>; spoofed: boolean } {
    const out: Record<string, string | string[]> = {};
    const headers = req.headers;
    // Headers the browser's Connection names are for the hop to the gateway only.
    const listed = typeof headers.connection === 'string' ? connectionListed(headers.connection) : undefined;
    let spoofed = false;
    for (const name in headers) {
      if (name.charCodeAt(0) === 0x3a /* : */ || listed?.has(name) === true) continue;
      if (isIdentityHeader(name, false)) {
        spoofed = true; // only the gateway's passport and the sidecars' headers may assert an identity
        continue;
      }
      // A name with `_` is dropped as the sidecar's inbound and external listener do (http-headers.ts
      // dropUnderscored): CGI, WSGI, PHP and Rack read `x_meshauth_user` as `x-meshauth-user`, and a route's peer
      // need not be a sidecar whose inbound would drop it. The method-override headers go too (isTerminatedClaim):
      // the edge policy decided on the request line's method, and such a service may honour them.
      if (
        DROP.has(name) ||
        isHopByHop(name) ||
        isForwardingHeader(name) ||
        isTerminatedClaim(name) ||
        name.includes('_')
      ) {
        continue;
      }
      const value = headers[name];
      if (value !== undefined) out[name] = value;
    }
    if (cookies.size > 0) {
      const rest = cookieHeaderWithout(headers.cookie, this.#reservedCookie);
      if (rest !== undefined) out.cookie = rest;
    }
    if (route.forwardToken && caller !== undefined) {
      // Opt-in and weaker: the service can replay this token wherever it is accepted (docs/gateway.md).
      const token = caller.via === 'bearer' ? caller.token : caller.session.accessToken;
      if (token !== undefined) out.authorization = `Bearer ${token}`;
    }
    out['x-forwarded-host'] = authority;
    out['x-forwarded-proto'] = 'https';
    out['x-forwarded-for'] = clientAddress(req.socket?.remoteAddress) ?? '';
    return { headers: out, spoofed };
  }

  /** The caller sent identity headers, which #forwardHeaders removed: a metric and a rate-limited warn line. */
  #reportSpoofed(req: EdgeRequest, route: GatewayRoute): void {
    this.#metrics.identityHeadersStripped.inc({ direction: 'edge' });
    this.#strippedLog.warn(
      {
        direction: 'edge',
        reason: 'identity_headers_stripped',
        route: route.name,
        sourceIp: clientAddress(req.socket?.remoteAddress),
      },
      'identity headers from the caller removed: only the sidecar sets them',
    );
  }

  /** A request refused before routing: counted as a deny without a route, one log line. */
  /**
   * The normalized path and the route of a request, or the refusal that answers it (with its rule when it is not the
   * error's own): an ambiguous path, one that only normalizes into the gateway's reserved prefix, a path whose
   * readings name two routes, or no route.
   */
  #locate(
    url: string,
    host: string,
  ):
    | { readonly normalized: ReturnType<typeof normalizePath>; readonly route: GatewayRoute }
    | { readonly error: MeshauthError; readonly rule?: EdgeRefusalRule } {
    try {
      const normalized = normalizePath(url);
      if (normalized.path === RESERVED_PREFIX.slice(0, -1) || normalized.path.startsWith(RESERVED_PREFIX)) {
        // A path that only normalizes into the gateway's namespace (`//.meshauth/…`, `/%2Emeshauth/…`): not the
        // gateway's endpoints, and never forwarded either.
        const error = new MeshauthError('MESHAUTH_ERR_EDGE_NO_ROUTE', `reserved path ${normalized.path.slice(0, 64)}`, {
          reason: 'reserved_path',
        });
        return { error };
      }
      const route = this.#routes.match(host, normalized.path);
      if (route === undefined) {
        const error = new MeshauthError('MESHAUTH_ERR_EDGE_NO_ROUTE', `no route for ${host}${normalized.path}`, {
          reason: 'no_route',
        });
        return { error, rule: EDGE_RULES.noRoute };
      }
      return { normalized, route };
    } catch (error) {
      if (!isMeshauthError(error)) throw error;
      return { error };
    }
  }

  #refuse(error: MeshauthError, req: EdgeRequest, rule: EdgeRefusalRule = refusalRule(error)): void {
    recordEdgeRefusal(this.#metrics, this.#logger, {
      error,
      rule,
      method: req.method,
      sourceIp: clientAddress(req.socket?.remoteAddress),
    });
  }

  #deny(route: GatewayRoute, rule: string, error: MeshauthError, req: EdgeRequest, user?: EndUser): void {
    this.#metrics.gatewayDecisions.inc({ route: route.name, decision: 'deny', rule });
    this.#logger.info(
      {
        // A refused token's issuer, alg and kid: this is the rejection's one line (the verifier does not log).
        ...error.detail,
        event: 'gateway_deny',
        route: route.name,
        rule,
        code: error.code,
        reason: error.reason,
        method: req.method,
        sub: user?.sub,
        sourceIp: clientAddress(req.socket?.remoteAddress),
      },
      'gateway deny',
    );
  }
}

/**
 * A request past its client's share of the route (ClientShare reported it): on HTTP/2 RST_STREAM(REFUSED_STREAM),
 * which tells the client that nothing was processed and that it may send the request again; on HTTP/1.1, where a
 * refused request cannot be told apart from a failed one, 429 with Retry-After.
 */
function refuseOverShare(req: EdgeRequest, res: EdgeResponseSink, refusal: MeshauthError): void {
  if (req.httpVersionMajor === 2 && req.stream !== undefined) {
    refuseStream(req.stream);
    return;
  }
  req.resume();
  writeError(res, refusal, { 'retry-after': '1' });
}

/**
 * Response fields that tell a cache whether and how long to keep an answer. CDNs and proxy caches read their own
 * field before Cache-Control (CDN-Cache-Control and the per-CDN `<name>-CDN-Cache-Control`, Akamai-Cache-Control,
 * Surrogate-Control, Edge-Control, nginx's X-Accel-Expires), and Expires and Pragma stand in for it at older
 * caches: any of them left next to `no-store` could still have the session cookie cached.
 */
const CACHING_FIELDS: ReadonlySet<string> = new Set([
  'expires',
  'pragma',
  'surrogate-control',
  'edge-control',
  'x-accel-expires',
]);

function isCachingField(lowerName: string): boolean {
  return lowerName.endsWith('cache-control') || CACHING_FIELDS.has(lowerName);
}

/**
 * How much of the request head the session's cookies may take: three quarters of limits.maxHeaderBytes. The rest is
 * for the browser's other headers (a navigation's are near 1 KB), the services' own cookies and the pre-login
 * cookies of sign-ins in progress.
 */
function sessionCookieBudget(maxHeaderBytes: number): number {
  return Math.floor((maxHeaderBytes * 3) / 4);
}

/** The `iss` of a token's payload without verifying anything: only chooses which verifier runs. */
function unverifiedIssuer(token: string): string {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
      iss?: unknown;
    };
    return typeof payload.iss === 'string' ? payload.iss : '';
  } catch {
    return '';
  }
}

/**
 * The body to forward. node:http2's compat request ends its readable side whenever its stream closes, a reset
 * mid-body included, so a cut upload would reach the service as complete; over HTTP/2 the body is read from the
 * stream itself, which ends only on END_STREAM and is destroyed when the stream is reset (request-body.ts).
 */
function requestBody(req: EdgeRequest): CallerBody {
  return req.httpVersionMajor === 2
    ? h2RequestBody(req.stream as ServerHttp2Stream) /* set on every HTTP/2 request */
    : req;
}

function hasBody(req: EdgeRequest): boolean {
  if (req.httpVersionMajor === 2) return req.stream?.endAfterHeaders !== true;
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/** Lower-case host of an authority, without port or IPv6 brackets. */
function hostOf(authority: string): string {
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    return (end === -1 ? authority.slice(1) : authority.slice(1, end)).toLowerCase();
  }
  const colon = authority.indexOf(':');
  return (colon === -1 ? authority : authority.slice(0, colon)).toLowerCase().replace(/\.$/, '');
}
