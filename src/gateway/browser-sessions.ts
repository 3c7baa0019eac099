// Browser sessions at the gateway: reading the sealed session cookie (a cookie that cannot be used is cleared and
// counted, never an error), renewing it with the refresh token before the access token expires (once per session
// and refresh token, whatever the number of parallel requests; a renewed ID token the gateway refuses ends the
// session, any other failed renewal leaves it until its access token expires), re-stamping the idle clock, and
// building sessions from token responses. The claims kept are sub, iss, scope, groups, client_id and `oidc.claims` (plus the roles
// claim); the raw ID token only when the provider offers RP-initiated logout and it fits.
// Sessions live in cookies, so a sign-out only ends a copy of the cookie (taken before it) because this process
// remembers the signed-out sessions until their absolute timeout; another gateway replica does not know of it.
import { randomBytes } from 'node:crypto';
import type { EndUser } from '../authn/end-user.js';
import { endUserFromClaims } from '../authn/end-user.js';
import { isMeshauthError, MeshauthError } from '../errors/index.js';
import type { Logger, Metrics } from '../telemetry/index.js';
import type { OidcSettings } from './gateway-config.js';
import { type OidcRelyingParty, refusedIdToken, type TokenResult } from './oidc-relying-party.js';
import type { SessionCodec, SessionData } from './session.js';

/** Sign-outs remembered per process (a few MiB at most). */
const MAX_SIGNED_OUT = 100_000;

export class BrowserSessions {
  readonly #codec: SessionCodec;
  readonly #rp: OidcRelyingParty | undefined;
  readonly #oidc: OidcSettings | undefined;
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  readonly #sessionClaims: readonly string[];
  readonly #keepTokens: boolean;
  /** Signed-out sessions (sid) → their absolute expiry (seconds); a copy of their cookie is refused. */
  readonly #signedOut = new Map<string, number>();
  /** Refreshes in flight or just done, by session and refresh token: parallel requests near expiry renew once. */
  readonly #refreshes = new Map<string, { readonly at: number; readonly result: Promise<Renewal> }>();

  constructor(options: {
    readonly codec: SessionCodec;
    readonly relyingParty: OidcRelyingParty | undefined;
    readonly oidc: OidcSettings | undefined;
    readonly metrics: Metrics;
    readonly logger: Logger;
    /** Keep the access token in the session (a route forwards it). */
    readonly keepTokens: boolean;
  }) {
    this.#codec = options.codec;
    this.#rp = options.relyingParty;
    this.#oidc = options.oidc;
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#keepTokens = options.keepTokens;
    const rolesTop = options.oidc?.rolesClaim.split('.')[0];
    this.#sessionClaims = [
      ...new Set([...(options.oidc?.claims ?? []), ...(rolesTop === undefined ? [] : [rolesTop])]),
    ];
  }

  get codec(): SessionCodec {
    return this.#codec;
  }

  /**
   * The signed-in user of the request's cookies, renewed or re-stamped as needed (the new cookies are pushed to
   * `setCookies`), or undefined (no session, or one that cannot be used any more: its cookies are cleared).
   */
  async resolve(
    cookies: ReadonlyMap<string, string>,
    nowS: number,
    setCookies: string[],
  ): Promise<{ readonly user: EndUser; readonly session: SessionData } | undefined> {
    const codec = this.#codec;
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
    const signedOutUntil = this.#signedOut.get(session.sid);
    if (signedOutUntil !== undefined && nowS < signedOutUntil) {
      this.#metrics.gatewaySessionsRejected.inc({ reason: 'revoked' });
      this.#logger.info(
        { event: 'session_rejected', reason: 'revoked', sub: session.claims.sub },
        'signed-out session',
      );
      setCookies.push(...codec.clear(cookies));
      return undefined;
    }
    const refreshBeforeS = Math.floor((this.#oidc?.refreshBeforeMs ?? 60_000) / 1000);
    // An access token that lasts to the session's own end (its expiry is clamped there) is not renewed: a renewal
    // could not extend the session, and each request of its last minutes would call the provider.
    const renewable = session.accessExpiresAt < codec.expiresAt(session);
    if (renewable && session.accessExpiresAt - refreshBeforeS <= nowS) {
      const renewal: Renewal = session.refreshToken === undefined ? 'kept' : await this.#refresh(session, nowS);
      if (renewal === 'refused') {
        // The renewed ID token was refused (it names another user, audience or issuer, or is not valid): the
        // sign-in cannot go on, so it ends now, and so does any copy of its cookie, rather than riding out the
        // access token.
        this.signOut(session, nowS);
        this.#metrics.gatewaySessionsRejected.inc({ reason: 'refresh_refused' });
        setCookies.push(...codec.clear(cookies));
        return undefined;
      }
      if (renewal === 'kept') {
        if (session.accessExpiresAt <= nowS) {
          this.#metrics.gatewaySessionsRejected.inc({ reason: 'token_expired' });
          setCookies.push(...codec.clear(cookies));
          return undefined;
        }
      } else {
        session = renewal;
        setCookies.push(...codec.write(session, cookies));
      }
    }
    if (setCookies.length === 0 && codec.needsStamp(session, nowS)) {
      session = { ...session, seenAt: nowS };
      let stamped: string[];
      try {
        stamped = codec.write(session, cookies);
      } catch (error) {
        if (!isMeshauthError(error) || error.code !== 'MESHAUTH_ERR_SESSION_TOO_LARGE') throw error;
        // A session made under a larger cookie budget (limits.maxHeaderBytes lowered since, or an earlier release)
        // cannot be re-stamped: it ends here, once, instead of failing every request until its idle timeout. The
        // sign-in that follows refuses it with the limit named.
        this.#metrics.gatewaySessionsRejected.inc({ reason: 'session_too_large' });
        this.#logger.info(
          { event: 'session_rejected', reason: 'session_too_large', sub: session.claims.sub },
          error.message,
        );
        setCookies.push(...codec.clear(cookies));
        return undefined;
      }
      setCookies.push(...stamped);
    }
    const user = this.userOf(session);
    if (user === undefined) {
      setCookies.push(...codec.clear(cookies));
      return undefined;
    }
    return { user, session };
  }

  /**
   * Remembers `session` as signed out until its absolute timeout, so a copy of its cookie no longer works here (one
   * past its absolute timeout is refused by every read anyway: not kept). At most MAX_SIGNED_OUT are kept; past
   * that, the ones that ended are forgotten first, then the oldest sign-outs.
   */
  signOut(session: SessionData, nowS: number): void {
    const endsAt = this.#codec.expiresAt(session);
    if (endsAt <= nowS) return;
    const signedOut = this.#signedOut;
    if (signedOut.size >= MAX_SIGNED_OUT) {
      for (const [key, until] of signedOut) if (until <= nowS) signedOut.delete(key);
      for (const key of signedOut.keys()) {
        if (signedOut.size < MAX_SIGNED_OUT) break;
        signedOut.delete(key);
      }
    }
    signedOut.set(session.sid, endsAt);
  }

  /**
   * Renews once per session and refresh token: a browser sends several requests at once near expiry, and providers
   * that rotate refresh tokens refuse the second use, which would end the session. Requests still carrying the old
   * cookie within a minute get the same outcome. The session's ID is part of the key: a refresh token the provider
   * handed to two sign-ins must not give one the other's renewed session (its sid, sign-in time and claims).
   */
  #refresh(session: SessionData, nowS: number): Promise<Renewal> {
    const refreshToken = session.refreshToken;
    if (this.#rp === undefined || refreshToken === undefined) return Promise.resolve('kept');
    const nowMs = nowS * 1000;
    if (this.#refreshes.size > 1_000) {
      for (const [key, entry] of this.#refreshes) if (nowMs - entry.at > 60_000) this.#refreshes.delete(key);
    }
    // A sid is base64url: the space cannot occur in it, so no two pairs make one key.
    const key = `${session.sid} ${refreshToken}`;
    const known = this.#refreshes.get(key);
    if (known !== undefined && nowMs - known.at <= 60_000) return known.result;
    const result = this.#renew(session, nowS, refreshToken);
    this.#refreshes.set(key, { at: nowMs, result });
    return result;
  }

  async #renew(session: SessionData, nowS: number, refreshToken: string): Promise<Renewal> {
    try {
      const tokens = await (this.#rp as OidcRelyingParty).refresh(refreshToken);
      // A new ID token must name the user who signed in: the session's sid, cookie and passport are theirs, and
      // openid-client cannot compare (it does not know the first ID token).
      if (tokens.idClaims !== undefined && tokens.idClaims.sub !== session.claims.sub) {
        throw new MeshauthError('MESHAUTH_ERR_LOGIN_FAILED', 'refreshed ID token names another sub', {
          reason: 'subject_mismatch',
        });
      }
      // A renewed session that no longer fits in its cookies (larger claims) is a failed renewal (counted once
      // here), not a write that fails on every request until the session ends.
      const renewed = this.fit(this.fromTokens(tokens, nowS, session));
      this.#metrics.gatewaySessionRefreshes.inc({ result: 'ok' });
      return renewed;
    } catch (error) {
      const reason = isMeshauthError(error) ? (error.reason ?? error.code) : 'error';
      const renewal = renewalAfter(error);
      this.#metrics.gatewaySessionRefreshes.inc({ result: reason });
      this.#logger.info(
        { event: 'session_refresh_failed', reason, sub: session.claims.sub, signedOut: renewal === 'refused' },
        renewal === 'refused' ? 'session refresh refused: signed out' : 'session refresh failed',
      );
      return renewal;
    }
  }

  /**
   * `session` as it will fit in its cookies: without its ID token when that is what does not fit (one log line). The
   * ID token only serves RP-initiated logout as `id_token_hint`, and the `client_id` sent with it stands in for it,
   * so a large one must not fail the sign-in. Throws MESHAUTH_ERR_SESSION_TOO_LARGE when it does not fit even so.
   */
  fit(session: SessionData): SessionData {
    try {
      this.#codec.checkFits(session);
      return session;
    } catch (error) {
      if (session.idToken === undefined || !isMeshauthError(error, 'MESHAUTH_ERR_SESSION_TOO_LARGE')) throw error;
    }
    const { idToken, ...withoutIdToken } = session;
    this.#codec.checkFits(withoutIdToken);
    this.#logger.info(
      { event: 'session_id_token_dropped', sub: session.claims.sub, idTokenChars: idToken.length },
      'the ID token does not fit in the session cookies: kept without it (sign-out at the provider without id_token_hint)',
    );
    return withoutIdToken;
  }

  /** The end user of a session (undefined when its claims are unusable). */
  userOf(session: SessionData): EndUser | undefined {
    return endUserFromClaims({ ...session.claims, exp: session.accessExpiresAt }, this.#sessionClaims);
  }

  /**
   * A session from a token response: a new sign-in at `nowS`, or the renewal of `previous`, which keeps its sign-in
   * (sid, createdAt) and what the provider did not send again.
   */
  fromTokens(tokens: TokenResult, nowS: number, previous?: SessionData): SessionData {
    const idClaims = tokens.idClaims;
    let claims: Record<string, unknown>;
    if (idClaims === undefined) {
      claims = { ...(previous?.claims ?? {}) };
    } else {
      claims = { sub: idClaims.sub, iss: idClaims.iss };
      for (const name of ['groups', 'client_id', ...this.#sessionClaims]) {
        if (Object.hasOwn(idClaims, name)) claims[name] = idClaims[name];
      }
    }
    claims.scope = tokens.scope ?? previous?.claims.scope ?? this.#oidc?.scopes.join(' ');
    const keepIdToken = tokens.idToken ?? previous?.idToken;
    const createdAt = previous?.createdAt ?? nowS;
    return {
      sid: previous?.sid ?? randomBytes(16).toString('base64url'),
      claims,
      createdAt,
      seenAt: nowS,
      // No later than the session's own end: a provider's `expires_in` of years would otherwise put the renewal
      // (and the passports' expiry, which is this) out of reach for the whole session.
      accessExpiresAt: Math.min(tokens.accessExpiresAt, this.#codec.expiresAt({ createdAt })),
      refreshToken: tokens.refreshToken ?? previous?.refreshToken,
      ...(this.#keepTokens ? { accessToken: tokens.accessToken } : {}),
      ...(keepIdToken === undefined ? {} : { idToken: keepIdToken }),
    };
  }
}

/**
 * What a refresh left the session with: renewed, kept as it is until its access token expires (no refresh token,
 * the provider unavailable or refusing the grant, an unexpected failure), or refused (the session ends now).
 */
type Renewal = SessionData | 'kept' | 'refused';

/**
 * A failed renewal ends the session at once only when the gateway refused the renewed ID token: the sign-in cannot
 * go on as the user it was. Anything else leaves the session to its current access token, which then ends it. A
 * refused grant (`invalid_grant`) is among them: it cannot be told from a sibling replica's renewal that rotated the
 * refresh token first (the browser's parallel requests reach several replicas; the sessions live in cookies, not in
 * a shared store), and signing that browser out would lose the session the sibling just renewed. An outage, a
 * provider's other errors and an unexpected failure must not sign users out either, nor send them all to sign in
 * again at a provider already in trouble.
 */
function renewalAfter(error: unknown): 'kept' | 'refused' {
  return refusedIdToken(error) ? 'refused' : 'kept';
}
