// Browser sign-in at the gateway (OpenID Connect authorization code flow with PKCE): the redirect to the provider
// with a sealed pre-login cookie (state, nonce, verifier, return path), the callback (rate-limited per client IP,
// state bound to that cookie, the code exchanged and the ID token checked by the relying party), and logout
// (RP-initiated when the provider offers it). One structured log line per sign-in attempt and per sign-out.
import { EDGE_RULES, type EdgeRefusalRule } from '../authz/index.js';
import { isMeshauthError, MeshauthError } from '../errors/index.js';
import { clientAddress, clientSourceKey } from '../platform/index.js';
import { type Logger, type Metrics, RateLimitedLog } from '../telemetry/index.js';
import type { BrowserSessions } from './browser-sessions.js';
import { parseCookies } from './cookies.js';
import type { EdgeRequest, EdgeResponseSink } from './edge-handler.js';
import { recordEdgeRefusal } from './edge-refusal.js';
import { loginFailedPage, loginRequired, redirect, withCookies, writeError } from './edge-responses.js';
import { checkClaimSize } from './edge-rule.js';
import { type GatewayRoute, type OidcSettings, signInHost } from './gateway-config.js';
import type { LoginState, LoginStateCodec } from './login-state.js';
import type { OidcRelyingParty, TokenResult } from './oidc-relying-party.js';
import { RateLimiter } from './rate-limiter.js';
import { isApiRequest, isCrossSite, isCrossSiteNavigation } from './request-kind.js';
import { safeReturnPath } from './return-url.js';
import type { SessionData } from './session.js';

export interface SignInFlowOptions {
  readonly relyingParty: OidcRelyingParty;
  readonly oidc: OidcSettings;
  readonly logins: LoginStateCodec;
  readonly sessions: BrowserSessions;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly now: () => Date;
  readonly callbackPerMinute: number;
  readonly maxClaimBytes: number;
}

export class SignInFlow {
  readonly #rp: OidcRelyingParty;
  readonly #oidc: OidcSettings;
  readonly #logins: LoginStateCodec;
  readonly #sessions: BrowserSessions;
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  readonly #now: () => Date;
  readonly #callbackLimiter: RateLimiter;
  readonly #maxClaimBytes: number;
  /** The gateway's public origin (from the redirect URI): the only origin allowed to change state. */
  readonly #ownOrigin: string;
  /** The only host a sign-in can finish on (the redirect URI's): its cookies are host-only. */
  readonly #signInHost: string;
  /** Any client picks the Host of a `*` route: one line per 10 s, the rest counted. */
  readonly #elsewhereLog: RateLimitedLog;

  constructor(options: SignInFlowOptions) {
    this.#rp = options.relyingParty;
    this.#oidc = options.oidc;
    this.#logins = options.logins;
    this.#sessions = options.sessions;
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#now = options.now;
    this.#callbackLimiter = new RateLimiter(options.callbackPerMinute);
    this.#maxClaimBytes = options.maxClaimBytes;
    this.#ownOrigin = new URL(options.oidc.redirectUri).origin;
    this.#signInHost = signInHost(options.oidc.redirectUri);
    this.#elsewhereLog = new RateLimitedLog(options.logger, options.metrics, 'login_elsewhere', 10_000);
  }

  get ownOrigin(): string {
    return this.#ownOrigin;
  }

  /**
   * A `login: required` route without a user: 401 for an API call, else 302 to the provider; on a host other than
   * the redirect URI's (a `*` route: the config refuses other exact hosts), 302 to the same path on the redirect
   * URI's origin, where a sign-in can finish (started here, its pre-login cookie would never reach the callback).
   */
  async loginRequired(
    req: EdgeRequest,
    res: EdgeResponseSink,
    route: GatewayRoute,
    request: { readonly method: string; readonly url: string; readonly host: string },
    setCookies: string[],
  ): Promise<void> {
    const rp = this.#rp;
    const logins = this.#logins;
    const { method, url, host } = request;
    if (isApiRequest(method, req.headers)) {
      this.#metrics.gatewayDecisions.inc({ route: route.name, decision: 'login', rule: EDGE_RULES.loginApi });
      writeError(res, loginRequired(), {
        'www-authenticate': 'Bearer realm="meshauth"',
        ...withCookies(setCookies),
      });
      return;
    }
    if (host !== this.#signInHost) {
      this.#metrics.gatewayDecisions.inc({ route: route.name, decision: 'login', rule: EDGE_RULES.loginRedirect });
      this.#elsewhereLog.warn(
        { event: 'login_elsewhere', route: route.name, host: host.slice(0, 253), signInHost: this.#signInHost },
        'sign-in finishes on the redirect URI host only: browser sent there',
      );
      redirect(res, `${this.#ownOrigin}${safeReturnPath(url)}`, setCookies);
      return;
    }
    let start: Awaited<ReturnType<OidcRelyingParty['startLogin']>>;
    try {
      start = await rp.startLogin();
    } catch (error) {
      if (!isMeshauthError(error)) throw error;
      this.#metrics.gatewayLogins.inc({ result: error.reason ?? error.code });
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
    this.#metrics.gatewayDecisions.inc({ route: route.name, decision: 'login', rule: EDGE_RULES.loginRedirect });
    const room = logins.makeRoom(parseCookies(req.headers.cookie), state.startedAt);
    redirect(res, start.url, [...setCookies, ...room, logins.write(state)]);
  }

  /** `/.meshauth/callback`: the authorization response, checked against this browser's pre-login cookie. */
  async callback(req: EdgeRequest, res: EdgeResponseSink, method: string, query: string): Promise<void> {
    req.resume();
    const rp = this.#rp;
    const logins = this.#logins;
    const sessions = this.#sessions.codec;
    const nowMs = this.#now().getTime();
    // One client is one bucket: an IPv4 client of a dual-stack listener by its IPv4 address, an IPv6 client by its
    // /64 (it may rotate its addresses inside that at will).
    const client = clientAddress(req.socket?.remoteAddress) ?? '';
    if (!this.#callbackLimiter.take(clientSourceKey(client), nowMs)) {
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
    const params = new URLSearchParams(query);
    const states = params.getAll('state');
    const stateParam = states.length === 1 ? (states[0] as string) : '';
    const clear = stateParam === '' ? [] : [logins.clear(stateParam)];
    const fail = (error: MeshauthError) => {
      const reason = error.reason ?? error.code;
      this.#metrics.gatewayLogins.inc({ result: reason });
      // The message is for the operator (what failed and what to change, e.g. what made the session too large);
      // the browser gets the registry's fixed sentence.
      this.#logger.warn(
        { event: 'login', result: 'failed', reason, code: error.code, client, err: error.message },
        'sign-in failed',
      );
      loginFailedPage(res, error, clear);
    };
    if (method !== 'GET') {
      fail(new MeshauthError('MESHAUTH_ERR_LOGIN_FAILED', `callback by ${method}`, { reason: 'method' }));
      return;
    }
    const nowS = Math.floor(nowMs / 1000);
    const state = stateParam === '' ? undefined : logins.read(cookies, nowS, stateParam);
    if (state === undefined) {
      // No pre-login cookie for this state: a callback this browser did not start (login CSRF), a swapped or
      // replayed state, or an expired attempt. Another sign-in of this browser may be in progress: a mismatch.
      const reason = stateParam !== '' && logins.anyIn(cookies) ? 'state_mismatch' : 'no_login_state';
      fail(new MeshauthError('MESHAUTH_ERR_LOGIN_FAILED', 'no sign-in in progress for this state', { reason }));
      return;
    }
    let tokens: TokenResult;
    let session: SessionData;
    let setCookies: string[];
    try {
      tokens = await rp.finishLogin(query, state);
      const made = this.#sessions.fromTokens(tokens, nowS);
      const user = this.#sessions.userOf(made);
      if (user === undefined) {
        throw new MeshauthError('MESHAUTH_ERR_LOGIN_FAILED', 'ID token has no usable sub', { reason: 'no_subject' });
      }
      checkClaimSize(user, this.#maxClaimBytes, 'MESHAUTH_ERR_LOGIN_FAILED');
      session = this.#sessions.fit(made);
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

  /** `/.meshauth/logout`: clear the cookies; RP-initiated logout when the provider offers it. */
  async logout(req: EdgeRequest, res: EdgeResponseSink, method: string): Promise<void> {
    req.resume();
    const cookies = parseCookies(req.headers.cookie);
    const sessions = this.#sessions.codec;
    if (method !== 'GET' && method !== 'POST') {
      this.#refuseLogout(
        req,
        res,
        new MeshauthError('MESHAUTH_ERR_METHOD_INVALID', 'logout is GET or POST', { reason: 'method' }),
        'logout-method',
      );
      return;
    }
    // A GET may sign out (a link on our own pages), but not one another site started: with RP-initiated logout it
    // would end the user's session at the provider too.
    if (isCrossSite(method, req.headers, this.#ownOrigin) || isCrossSiteNavigation(req.headers)) {
      this.#refuseLogout(
        req,
        res,
        new MeshauthError('MESHAUTH_ERR_CROSS_SITE_REQUEST', 'cross-site logout', { reason: 'cross_site' }),
        'logout-cross_site',
      );
      return;
    }
    const nowS = Math.floor(this.#now().getTime() / 1000);
    // Any authentic session cookie, idle or past its absolute timeout too: the browser's own copy may have gone idle
    // while a copy of it kept being used (and re-stamped) elsewhere, and that copy must end with this sign-out.
    const session = sessions.authentic(cookies);
    if (session !== undefined) this.#sessions.signOut(session, nowS);
    const clear = sessions.clear(cookies);
    const home = this.#oidc.postLogoutRedirectUri ?? `${this.#ownOrigin}/`;
    const endSession = await this.#rp.endSessionUrl(session?.idToken, home);
    this.#logger.info({ event: 'logout', sub: session?.claims.sub, rpInitiated: endSession !== undefined }, 'sign-out');
    redirect(res, endSession ?? home, clear);
  }

  /** A refused logout: counted as a deny of the logout endpoint (no route), one log line, the error. */
  #refuseLogout(req: EdgeRequest, res: EdgeResponseSink, error: MeshauthError, rule: EdgeRefusalRule): void {
    recordEdgeRefusal(this.#metrics, this.#logger, {
      error,
      rule,
      method: req.method,
      sourceIp: clientAddress(req.socket?.remoteAddress),
    });
    writeError(res, error);
  }
}
