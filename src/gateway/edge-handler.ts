// The gateway's request pipeline (one instance per gateway): sign-in callback and logout, route match on the
// normalized path, who the caller is (API bearer token, else the session cookie, renewed before its access token
// expires), the cross-site check for cookie-authenticated state changes, the route's login rule (navigation → 302
// to the provider, API call → 401 with WWW-Authenticate, never a redirect), the route's requirements, the policy
// file (default deny), then the mesh. Strip, then set: the session cookie, Authorization (unless the route opts
// in), identity and forwarding headers never pass; the end user travels only as a passport the gateway mints.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { bearerChallenge } from '../authn/bearer-challenge.js';
import type { EndUser } from '../authn/end-user.js';
import { endUserFromClaims } from '../authn/end-user.js';
import type { EndUserVerifier } from '../authn/end-user-verifier.js';
import { type AuthzRequest, type CompiledPolicy, decide, denyAuditRecord, normalizePath } from '../authz/index.js';
import { isMeshauthError, MeshauthError } from '../errors/index.js';
import type { Logger, Metrics } from '../telemetry/index.js';
import { cookieHeaderWithout, parseCookies } from './cookies.js';
import { type EdgeResponse, loginFailedPage, redirect, writeError } from './edge-responses.js';
import { unmetRequirement } from './edge-rule.js';
import {
  type ApiIssuerSettings,
  CALLBACK_PATH,
  type GatewayConfig,
  type GatewayRoute,
  LOGOUT_PATH,
  type OidcSettings,
} from './gateway-config.js';
import type { JwtSvidVerifier } from './jwt-svid-verifier.js';
import { type LoginState, LoginStateCodec } from './login-state.js';
import { isForwarderHeader, type MeshForwarder, type ResponseSink } from './mesh-forwarder.js';
import type { OidcRelyingParty, TokenResult } from './oidc-relying-party.js';
import { RateLimiter } from './rate-limiter.js';
import { isApiRequest, isCrossSite } from './request-kind.js';
import { safeReturnPath } from './return-url.js';
import { RouteTable } from './route-table.js';
import { SessionCodec, type SessionData } from './session.js';
import type { SessionKeyRing } from './session-keys.js';

/** What the handler reads of a request: node:http's IncomingMessage or node:http2's compat request. */
export interface EdgeRequest extends Readable {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly headers: IncomingHttpHeaders;
  readonly httpVersionMajor: number;
  readonly socket: { readonly remoteAddress?: string | undefined } | null;
  readonly stream?: { readonly endAfterHeaders?: boolean } | undefined;
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
}

type Caller =
  | { readonly user: EndUser; readonly via: 'bearer'; readonly token: string }
  | { readonly user: EndUser; readonly via: 'session'; readonly session: SessionData }
  | undefined;

// Request headers that never reach the mesh from outside: hop-by-hop (RFC 9110 §7.6.1), the gateway's forwarding
// headers (set below from what it saw), and identity headers (only sidecars set them).
const DROP: ReadonlySet<string> = new Set([
  'host',
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'expect',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-client-cert',
  'authorization',
  'cookie',
]);

export class EdgeHandler {
  readonly #config: GatewayConfig;
  readonly #forwarder: MeshForwarder;
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  readonly #now: () => Date;
  readonly #routes: RouteTable;
  readonly #sessions: SessionCodec | undefined;
  readonly #logins: LoginStateCodec | undefined;
  readonly #rp: OidcRelyingParty | undefined;
  readonly #oidc: OidcSettings | undefined;
  readonly #api: EndUserVerifier | undefined;
  readonly #jwtSvids: JwtSvidVerifier | undefined;
  readonly #apiClaims: ReadonlyMap<string, readonly string[]>;
  readonly #sessionClaims: readonly string[];
  readonly #policy: (() => CompiledPolicy) | undefined;
  readonly #callbackLimiter: RateLimiter;
  readonly #ownOrigin: string | undefined;
  readonly #port: () => number;
  readonly #keepTokens: boolean;
  /** Refreshes in flight or just done, by refresh token: parallel requests near expiry renew once. */
  readonly #refreshes = new Map<string, { readonly at: number; readonly result: Promise<SessionData | undefined> }>();
  readonly #reservedCookie = (name: string): boolean =>
    name.startsWith(this.#config.session.cookieName) || name.startsWith('__Host-meshauth');

  constructor(options: EdgeHandlerOptions) {
    const { config } = options;
    this.#config = config;
    this.#forwarder = options.forwarder;
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#now = options.now;
    this.#routes = new RouteTable(config.routes);
    this.#rp = options.relyingParty;
    this.#oidc = config.oidc;
    this.#api = options.apiVerifier;
    this.#jwtSvids = options.jwtSvidVerifier;
    this.#policy = options.policy;
    this.#port = options.port;
    this.#callbackLimiter = new RateLimiter(config.limits.callbackPerMinute);
    this.#apiClaims = new Map(config.apiIssuers.map((a: ApiIssuerSettings) => [a.issuer, a.claims]));
    const rolesTop = config.oidc?.rolesClaim.split('.')[0];
    this.#sessionClaims = [...new Set([...(config.oidc?.claims ?? []), ...(rolesTop === undefined ? [] : [rolesTop])])];
    this.#keepTokens = config.routes.some((r) => r.forwardToken);
    this.#ownOrigin = config.oidc === undefined ? undefined : new URL(config.oidc.redirectUri).origin;
    if (options.keyRing !== undefined) {
      this.#sessions = new SessionCodec({
        ring: options.keyRing,
        cookieName: config.session.cookieName,
        idleTimeoutMs: config.session.idleTimeoutMs,
        absoluteTimeoutMs: config.session.absoluteTimeoutMs,
      });
      this.#logins = new LoginStateCodec(options.keyRing, config.session.cookieName);
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
    // node:http enforces maxHeaderSize on HTTP/1.1 (431); node:http2 only advertises SETTINGS_MAX_HEADER_LIST_SIZE,
    // so the HTTP/2 header list is measured here (RFC 7541 §4.1 size: name + value + 32 per field).
    if (req.httpVersionMajor === 2 && headerListSize(headers) > this.#config.limits.maxHeaderBytes) {
      writeError(
        res,
        new MeshauthError('MESHAUTH_ERR_HEADERS_TOO_LARGE', 'header list too large', { reason: 'headers' }),
      );
      return;
    }
    const authority = (headers[':authority'] as string | undefined) ?? headers.host ?? '';
    const host = hostOf(authority);
    const queryAt = url.indexOf('?');
    const rawPath = queryAt === -1 ? url : url.slice(0, queryAt);
    if (rawPath === CALLBACK_PATH) return this.#callback(req, res, method, queryAt === -1 ? '' : url.slice(queryAt));
    if (rawPath === LOGOUT_PATH) return this.#logout(req, res, method, authority);

    let normalized: ReturnType<typeof normalizePath>;
    try {
      normalized = normalizePath(url);
    } catch (error) {
      if (!isMeshauthError(error)) throw error;
      writeError(res, error);
      return;
    }
    const route = this.#routes.match(host, normalized.path);
    if (route === undefined) {
      this.#metrics.gatewayDecisions.inc({ route: '', decision: 'deny', rule: 'no-route' });
      writeError(res, new MeshauthError('MESHAUTH_ERR_EDGE_NO_ROUTE', `no route for ${host}${normalized.path}`));
      return;
    }
    const cookies = parseCookies(headers.cookie);
    const setCookies: string[] = [];
    let caller: Caller;
    try {
      caller = await this.#authenticate(headers, cookies, setCookies);
    } catch (error) {
      if (!isMeshauthError(error)) throw error;
      this.#deny(route, 'authentication', error, req);
      const challenge = bearerChallenge(error);
      writeError(res, error, { 'www-authenticate': challenge.headers['www-authenticate'] as string });
      return;
    }
    if (caller?.via === 'session' && isCrossSite(method, headers, this.#ownOrigin ?? `https://${authority}`)) {
      const error = new MeshauthError('MESHAUTH_ERR_CROSS_SITE_REQUEST', 'cross-site state-changing request', {
        reason: 'cross_site',
      });
      this.#deny(route, 'cross-site', error, req);
      writeError(res, error, withCookies(setCookies));
      return;
    }
    const user = caller?.user;
    if (user === undefined && route.login === 'required') {
      await this.#loginRequired(req, res, route, method, url, setCookies);
      return;
    }
    if (user !== undefined) {
      const unmet = unmetRequirement(route, user, this.#oidc?.rolesClaim ?? 'roles');
      if (unmet !== undefined) {
        const error = new MeshauthError('MESHAUTH_ERR_FORBIDDEN', `route ${route.name} requires ${unmet}`, {
          reason: 'edge_requirement',
        });
        this.#deny(route, `route-${unmet}`, error, req, user);
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
          { rule: `route-${unmet}` },
        );
        return;
      }
    }
    const policy = this.#policy?.();
    if (policy !== undefined) {
      const request: AuthzRequest = {
        method,
        path: normalized.path,
        host: authority,
        port: this.#port(),
        headers,
        sourceIp: req.socket?.remoteAddress ?? '',
        user: user?.claims,
        now: this.#now(),
      };
      const decision = decide(policy, request);
      this.#metrics.authzDecisions.inc({ decision: decision.decision, rule: decision.rule });
      if (decision.decision === 'deny') {
        this.#logger.info({ ...denyAuditRecord(request, decision), route: route.name }, 'gateway deny');
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
      this.#metrics.gatewayDecisions.inc({ route: route.name, decision: 'allow', rule: `route-login-${route.login}` });
    }

    const out = this.#forwardHeaders(req, authority, cookies, route, caller);
    const body = hasBody(req) ? req : null;
    if (body === null) req.resume();
    if (setCookies.length > 0) {
      // The session was renewed or re-stamped: the cookies ride on the service's answer.
      const writeHead = res.writeHead.bind(res);
      res.writeHead = (status: number, h: OutgoingHttpHeaders) => {
        const existing = h['set-cookie'];
        const merged = [
          ...setCookies,
          ...(existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)]),
        ];
        return writeHead(status, { ...h, 'set-cookie': merged });
      };
    }
    await this.#forwarder.forward(
      { route, method, target: normalized.target, headers: out, body, user, reservedCookie: this.#reservedCookie },
      res,
      (error) => writeError(res, error),
    );
  }

  /** API bearer token first (never combined with the cookie), then the session. */
  async #authenticate(
    headers: IncomingHttpHeaders,
    cookies: ReadonlyMap<string, string>,
    setCookies: string[],
  ): Promise<Caller> {
    const authorization = headers.authorization;
    if (authorization !== undefined) {
      const jwtSvids = this.#jwtSvids;
      if (jwtSvids !== undefined) {
        const token = bearerToken(authorization);
        if (token !== undefined && jwtSvids.claims(unverifiedIssuer(token))) {
          return { user: await jwtSvids.verify(token), via: 'bearer', token };
        }
      }
      if (this.#api === undefined) {
        throw new MeshauthError('MESHAUTH_ERR_TOKEN_INVALID', 'no apiIssuers configured', { reason: 'no_issuer' });
      }
      const user = await this.#api.authenticate(headers);
      if (user === undefined) return undefined;
      const scoped = endUserFromClaims({ ...user.claims, exp: user.expiresAt }, this.#apiClaims.get(user.iss) ?? []);
      if (scoped === undefined) throw new MeshauthError('MESHAUTH_ERR_TOKEN_INVALID', 'no subject', { reason: 'sub' });
      this.#checkClaimSize(scoped, 'MESHAUTH_ERR_TOKEN_INVALID');
      const token = /^bearer\s+(.*)$/i.exec(String(authorization))?.[1]?.trim() ?? '';
      return { user: scoped, via: 'bearer', token };
    }
    const codec = this.#sessions;
    if (codec === undefined) return undefined;
    const nowS = Math.floor(this.#now().getTime() / 1000);
    const read = codec.read(cookies, nowS);
    if (read === undefined) return undefined;
    if ('failure' in read) {
      // Tampered, truncated, from a rotated-out key, idle or too old: forget it and sign in again (never a 500).
      this.#metrics.gatewaySessionsRejected.inc({ reason: read.failure });
      this.#logger.info({ event: 'session_rejected', reason: read.failure }, 'session cookie not usable');
      setCookies.push(...codec.clear(cookies));
      return undefined;
    }
    let session = read.session;
    const refreshBeforeS = Math.floor((this.#oidc?.refreshBeforeMs ?? 60_000) / 1000);
    if (session.accessExpiresAt - refreshBeforeS <= nowS) {
      const renewed = session.refreshToken === undefined ? undefined : await this.#refresh(session, nowS);
      if (renewed === undefined) {
        if (session.accessExpiresAt <= nowS) {
          this.#metrics.gatewaySessionsRejected.inc({ reason: 'token_expired' });
          setCookies.push(...codec.clear(cookies));
          return undefined;
        }
      } else {
        session = renewed;
        setCookies.push(...codec.write(session, cookies));
      }
    }
    if (setCookies.length === 0 && codec.needsStamp(session, nowS)) {
      session = { ...session, seenAt: nowS };
      setCookies.push(...codec.write(session, cookies));
    }
    const user = this.#sessionUser(session);
    if (user === undefined) {
      setCookies.push(...codec.clear(cookies));
      return undefined;
    }
    return { user, via: 'session', session };
  }

  /**
   * Renews once per refresh token: a browser sends several requests at once near expiry, and providers that rotate
   * refresh tokens refuse the second use, which would end the session. Requests still carrying the old cookie
   * within a minute get the same renewed session.
   */
  #refresh(session: SessionData, nowS: number): Promise<SessionData | undefined> {
    const refreshToken = session.refreshToken;
    if (this.#rp === undefined || refreshToken === undefined) return Promise.resolve(undefined);
    const nowMs = nowS * 1000;
    if (this.#refreshes.size > 1_000) {
      for (const [token, entry] of this.#refreshes) if (nowMs - entry.at > 60_000) this.#refreshes.delete(token);
    }
    const known = this.#refreshes.get(refreshToken);
    if (known !== undefined && nowMs - known.at <= 60_000) return known.result;
    const result = this.#renew(session, nowS, refreshToken);
    this.#refreshes.set(refreshToken, { at: nowMs, result });
    return result;
  }

  async #renew(session: SessionData, nowS: number, refreshToken: string): Promise<SessionData | undefined> {
    try {
      const tokens = await (this.#rp as OidcRelyingParty).refresh(refreshToken);
      this.#metrics.gatewaySessionRefreshes.inc({ result: 'ok' });
      return this.#sessionFrom(tokens, session.claims, session.createdAt, nowS, refreshToken, session.idToken);
    } catch (error) {
      const reason = isMeshauthError(error) ? (error.reason ?? error.code) : 'error';
      this.#metrics.gatewaySessionRefreshes.inc({ result: reason });
      this.#logger.info({ event: 'session_refresh_failed', reason, sub: session.claims.sub }, 'session refresh failed');
      return undefined;
    }
  }

  #sessionUser(session: SessionData): EndUser | undefined {
    return endUserFromClaims({ ...session.claims, exp: session.accessExpiresAt }, this.#sessionClaims);
  }

  #sessionFrom(
    tokens: TokenResult,
    previousClaims: Readonly<Record<string, unknown>> | undefined,
    createdAt: number,
    nowS: number,
    previousRefresh?: string,
    previousIdToken?: string,
  ): SessionData {
    const idClaims = tokens.idClaims;
    let claims: Record<string, unknown>;
    if (idClaims === undefined) {
      claims = { ...(previousClaims ?? {}) };
    } else {
      claims = { sub: idClaims.sub, iss: idClaims.iss };
      for (const name of ['groups', 'client_id', ...this.#sessionClaims]) {
        if (Object.hasOwn(idClaims, name)) claims[name] = idClaims[name];
      }
    }
    claims.scope = tokens.scope ?? previousClaims?.scope ?? this.#oidc?.scopes.join(' ');
    const keepIdToken = tokens.idToken ?? previousIdToken;
    return {
      claims,
      createdAt,
      seenAt: nowS,
      accessExpiresAt: tokens.accessExpiresAt,
      refreshToken: tokens.refreshToken ?? previousRefresh,
      ...(this.#keepTokens ? { accessToken: tokens.accessToken } : {}),
      ...(keepIdToken === undefined ? {} : { idToken: keepIdToken }),
    };
  }

  #checkClaimSize(user: EndUser, code: 'MESHAUTH_ERR_TOKEN_INVALID' | 'MESHAUTH_ERR_LOGIN_FAILED'): void {
    const size = Buffer.byteLength(JSON.stringify(user.claims));
    if (size > this.#config.limits.maxClaimBytes) {
      throw new MeshauthError(
        code,
        `end-user claims are ${size} bytes; limits.maxClaimBytes is ${this.#config.limits.maxClaimBytes}`,
        {
          reason: 'claims_too_large',
        },
      );
    }
  }

  async #loginRequired(
    req: EdgeRequest,
    res: EdgeResponseSink,
    route: GatewayRoute,
    method: string,
    url: string,
    setCookies: string[],
  ): Promise<void> {
    const rp = this.#rp;
    const logins = this.#logins;
    if (isApiRequest(method, req.headers) || rp === undefined || logins === undefined) {
      this.#metrics.gatewayDecisions.inc({ route: route.name, decision: 'login', rule: 'api-401' });
      writeError(
        res,
        new MeshauthError('MESHAUTH_ERR_LOGIN_REQUIRED', 'sign-in required', { reason: 'login_required' }),
        {
          'www-authenticate': 'Bearer realm="meshauth"',
          ...withCookies(setCookies),
        },
      );
      return;
    }
    let start: Awaited<ReturnType<OidcRelyingParty['startLogin']>>;
    try {
      start = await rp.startLogin();
    } catch (error) {
      if (!isMeshauthError(error)) throw error;
      this.#logger.warn(
        { event: 'login_start_failed', code: error.code, reason: error.reason },
        'sign-in could not start',
      );
      writeError(res, error, withCookies(setCookies));
      return;
    }
    const state: LoginState = {
      state: start.state,
      nonce: start.nonce,
      verifier: start.verifier,
      returnTo: safeReturnPath(url),
      startedAt: Math.floor(this.#now().getTime() / 1000),
    };
    this.#metrics.gatewayDecisions.inc({ route: route.name, decision: 'login', rule: 'redirect' });
    redirect(res, start.url, [...setCookies, logins.write(state)]);
  }

  async #callback(req: EdgeRequest, res: EdgeResponseSink, method: string, query: string): Promise<void> {
    req.resume();
    const rp = this.#rp;
    const logins = this.#logins;
    const sessions = this.#sessions;
    if (rp === undefined || logins === undefined || sessions === undefined) {
      writeError(res, new MeshauthError('MESHAUTH_ERR_EDGE_NO_ROUTE', 'no browser sign-in configured'));
      return;
    }
    const nowMs = this.#now().getTime();
    const client = req.socket?.remoteAddress ?? '';
    if (!this.#callbackLimiter.take(client, nowMs)) {
      this.#metrics.gatewayLogins.inc({ result: 'rate_limited' });
      this.#logger.warn({ event: 'login', result: 'rate_limited', client }, 'sign-in callback rate limited');
      writeError(
        res,
        new MeshauthError('MESHAUTH_ERR_RATE_LIMITED', 'callback rate limit', { reason: 'rate_limited' }),
        {
          'retry-after': String(this.#callbackLimiter.retryAfterSeconds(nowMs)),
        },
      );
      return;
    }
    const cookies = parseCookies(req.headers.cookie);
    const clear = [logins.clear()];
    const fail = (error: MeshauthError) => {
      const reason = error.reason ?? error.code;
      this.#metrics.gatewayLogins.inc({ result: reason });
      this.#logger.warn({ event: 'login', result: 'failed', reason, code: error.code, client }, 'sign-in failed');
      loginFailedPage(res, error, clear);
    };
    if (method !== 'GET') {
      fail(new MeshauthError('MESHAUTH_ERR_LOGIN_FAILED', `callback by ${method}`, { reason: 'method' }));
      return;
    }
    const nowS = Math.floor(nowMs / 1000);
    const state = logins.read(cookies, nowS);
    if (state === undefined) {
      // No pre-login cookie: a callback this browser did not start (login CSRF), a replay, or an expired attempt.
      fail(new MeshauthError('MESHAUTH_ERR_LOGIN_FAILED', 'no sign-in in progress', { reason: 'no_login_state' }));
      return;
    }
    const params = new URLSearchParams(query);
    if (params.getAll('state').length !== 1 || params.get('state') !== state.state) {
      fail(new MeshauthError('MESHAUTH_ERR_LOGIN_FAILED', 'state does not match', { reason: 'state_mismatch' }));
      return;
    }
    let tokens: TokenResult;
    let session: SessionData;
    let setCookies: string[];
    try {
      tokens = await rp.finishLogin(query, state);
      session = this.#sessionFrom(tokens, undefined, nowS, nowS);
      const user = this.#sessionUser(session);
      if (user === undefined) {
        throw new MeshauthError('MESHAUTH_ERR_LOGIN_FAILED', 'ID token has no usable sub', { reason: 'no_subject' });
      }
      this.#checkClaimSize(user, 'MESHAUTH_ERR_LOGIN_FAILED');
      setCookies = sessions.write(session, cookies);
    } catch (error) {
      if (!isMeshauthError(error)) throw error;
      fail(error);
      return;
    }
    this.#metrics.gatewayLogins.inc({ result: 'ok' });
    this.#logger.info(
      {
        event: 'login',
        result: 'ok',
        sub: session.claims.sub,
        iss: session.claims.iss,
        client,
        refresh: tokens.refreshToken !== undefined,
      },
      'sign-in',
    );
    redirect(res, state.returnTo, [...setCookies, ...clear]);
  }

  async #logout(req: EdgeRequest, res: EdgeResponseSink, method: string, authority: string): Promise<void> {
    req.resume();
    const cookies = parseCookies(req.headers.cookie);
    const sessions = this.#sessions;
    if (sessions === undefined) {
      redirect(res, '/', []);
      return;
    }
    if (method !== 'GET' && method !== 'POST') {
      writeError(res, new MeshauthError('MESHAUTH_ERR_METHOD_INVALID', 'logout is GET or POST'));
      return;
    }
    if (isCrossSite(method, req.headers, this.#ownOrigin ?? `https://${authority}`)) {
      writeError(
        res,
        new MeshauthError('MESHAUTH_ERR_CROSS_SITE_REQUEST', 'cross-site logout', { reason: 'cross_site' }),
      );
      return;
    }
    const read = sessions.read(cookies, Math.floor(this.#now().getTime() / 1000));
    const session = read !== undefined && 'session' in read ? read.session : undefined;
    const clear = sessions.clear(cookies);
    const home = this.#oidc?.postLogoutRedirectUri ?? `${this.#ownOrigin ?? `https://${authority}`}/`;
    const endSession = await this.#rp?.endSessionUrl(session?.idToken, home);
    this.#logger.info({ event: 'logout', sub: session?.claims.sub, rpInitiated: endSession !== undefined }, 'sign-out');
    redirect(res, endSession ?? home, clear);
  }

  #forwardHeaders(
    req: EdgeRequest,
    authority: string,
    cookies: ReadonlyMap<string, string>,
    route: GatewayRoute,
    caller: Caller,
  ): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {};
    const headers = req.headers;
    for (const name in headers) {
      if (
        name.charCodeAt(0) === 0x3a /* : */ ||
        DROP.has(name) ||
        name.startsWith('x-meshauth-') ||
        isForwarderHeader(name)
      ) {
        continue;
      }
      const value = headers[name];
      if (value !== undefined) out[name] = value;
    }
    if (cookies.size > 0) {
      const sessions = this.#sessions;
      const logins = this.#logins;
      const rest = cookieHeaderWithout(headers.cookie, (n) => sessions?.owns(n) === true || n === logins?.name);
      if (rest !== undefined) out.cookie = rest;
    }
    if (route.forwardToken && caller !== undefined) {
      // Opt-in and weaker: the service can replay this token wherever it is accepted (docs/gateway.md).
      const token = caller.via === 'bearer' ? caller.token : caller.session.accessToken;
      if (token !== undefined) out.authorization = `Bearer ${token}`;
    }
    out['x-forwarded-host'] = authority;
    out['x-forwarded-proto'] = 'https';
    out['x-forwarded-for'] = req.socket?.remoteAddress ?? '';
    return out;
  }

  #deny(route: GatewayRoute, rule: string, error: MeshauthError, req: EdgeRequest, user?: EndUser): void {
    this.#metrics.gatewayDecisions.inc({ route: route.name, decision: 'deny', rule });
    this.#logger.info(
      {
        event: 'gateway_deny',
        route: route.name,
        rule,
        code: error.code,
        reason: error.reason,
        method: req.method,
        sub: user?.sub,
        sourceIp: req.socket?.remoteAddress,
      },
      'gateway deny',
    );
  }
}

function bearerToken(authorization: string | string[]): string | undefined {
  if (typeof authorization !== 'string') return undefined;
  return /^bearer +([A-Za-z0-9._~+/=-]+)$/i.exec(authorization.trim())?.[1];
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

function headerListSize(headers: IncomingHttpHeaders): number {
  let size = 0;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === 'string') size += name.length + value.length + 32;
    else for (const v of value) size += name.length + v.length + 32;
  }
  return size;
}

function withCookies(cookies: readonly string[]): OutgoingHttpHeaders {
  return cookies.length === 0 ? {} : { 'set-cookie': [...cookies] };
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
