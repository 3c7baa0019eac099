// The gateway as an OpenID Connect relying party, on openid-client 6 (an OpenID-certified RP): discovery (lazy,
// retried after a failure), the authorization code flow with PKCE S256, `state` and `nonce` (so an intercepted or
// injected code, or a replayed ID token, is refused), the refresh-token grant and RP-initiated logout. The ID
// token's algorithm is pinned to one asymmetric algorithm (never `none`, never HS*, so a token cannot pick a weaker
// check), its issuer, audience, nonce, exp and nbf are checked by openid-client, its iat here (not ahead of our clock
// beyond the same tolerance). An http:// issuer is allowed only on loopback (the config refuses others); `oidc.caFile`
// trusts a private CA for an https issuer. The provider's answers are size-capped (provider-fetch.ts). Failures
// become MeshauthErrors with a bounded reason.
import * as client from 'openid-client';
import { Agent } from 'undici';
import { readSettingFile as readOperatorFile } from '../config/index.js';
import { shownPath } from '../config/secret-path.js';
import { isMeshauthError, MeshauthError } from '../errors/index.js';
import type { Logger } from '../telemetry/index.js';
import type { OidcSettings } from './gateway-config.js';
import { ASYMMETRIC_ID_TOKEN_ALGORITHM } from './gateway-schema.js';
import { causeWithin, ownErrorWithin, providerFetch } from './provider-fetch.js';

export interface LoginStart {
  readonly url: string;
  readonly state: string;
  readonly nonce: string;
  readonly verifier: string;
}

export interface TokenResult {
  /** Verified ID token claims (on sign-in; on refresh only when the provider sent a new ID token). */
  readonly idClaims: Readonly<Record<string, unknown>> | undefined;
  readonly accessToken: string;
  readonly accessExpiresAt: number;
  readonly refreshToken: string | undefined;
  /**
   * The raw ID token, only when the provider offers RP-initiated logout (its one use, as `id_token_hint`): it can
   * be many KiB (group lists) and the session carries it in every request's cookies.
   */
  readonly idToken: string | undefined;
  readonly scope: string | undefined;
}

const DISCOVERY_RETRY_MS = 5_000;
const DEFAULT_ACCESS_TTL_S = 300;
/**
 * How far (seconds) the provider's clock may differ from ours for an ID token's time claims: openid-client's own
 * default, set on the client so its exp/nbf checks and the iat check here use one value.
 */
const ID_TOKEN_CLOCK_TOLERANCE_S = 30;

export class OidcRelyingParty {
  readonly #settings: OidcSettings;
  readonly #logger: Logger;
  readonly #secret: string | undefined;
  readonly #dispatcher: Agent;
  #config: Promise<client.Configuration> | undefined;
  #failedAt = 0;

  constructor(settings: OidcSettings, logger: Logger) {
    this.#settings = settings;
    this.#logger = logger;
    this.#secret = settings.clientSecretFile === undefined ? undefined : readClientSecret(settings.clientSecretFile);
    const ca = settings.caFile === undefined ? undefined : readSettingFile('oidc.caFile', settings.caFile);
    // A private dispatcher: no proxy from the environment, bounded connect time, the private CA when configured.
    // rejectUnauthorized explicit, so NODE_TLS_REJECT_UNAUTHORIZED=0 in the environment cannot untrust the provider.
    this.#dispatcher = new Agent({
      connect: { timeout: 5_000, rejectUnauthorized: true, ...(ca === undefined ? {} : { ca }) },
    });
    if (settings.insecureLoopback) {
      logger.warn(
        { issuer: settings.issuer },
        'oidc.issuer is http:// on loopback: acceptable for local development only',
      );
    }
  }

  /** The discovered configuration; a failed discovery is retried at most every few seconds. */
  configuration(): Promise<client.Configuration> {
    if (this.#config !== undefined) return this.#config;
    if (Date.now() - this.#failedAt < DISCOVERY_RETRY_MS) {
      return Promise.reject(unavailable('discovery failed recently', undefined));
    }
    const customFetch = providerFetch(this.#dispatcher);
    const settings = this.#settings;
    const auth = this.#secret === undefined ? client.None() : client.ClientSecretBasic(this.#secret);
    const metadata: Partial<client.ClientMetadata> = {
      ...(this.#secret === undefined ? {} : { client_secret: this.#secret }),
      redirect_uris: [settings.redirectUri],
    };
    const configured = client
      .discovery(new URL(settings.issuer), settings.clientId, metadata, auth, {
        [client.customFetch]: customFetch,
        timeout: 10,
        ...(settings.insecureLoopback ? { execute: [client.allowInsecureRequests] } : {}),
      })
      .then((discovered) => {
        const server = discovered.serverMetadata();
        const alg = pickIdTokenAlgorithm(settings.idTokenAlgorithm, server.id_token_signing_alg_values_supported);
        if (alg === undefined) {
          throw new MeshauthError(
            'MESHAUTH_ERR_CONFIG_INVALID',
            `oidc.issuer ${settings.issuer} offers no asymmetric ID token algorithm; set oidc.idTokenAlgorithm`,
            { reason: 'id_token_alg' },
          );
        }
        // Pinned per client (openid-client checks the ID token header against it): HS* and none never validate.
        const config = new client.Configuration(
          server,
          settings.clientId,
          { ...metadata, id_token_signed_response_alg: alg, [client.clockTolerance]: ID_TOKEN_CLOCK_TOLERANCE_S },
          auth,
        );
        config[client.customFetch] = customFetch;
        config.timeout = 10;
        if (settings.insecureLoopback) client.allowInsecureRequests(config);
        this.#logger.info({ issuer: server.issuer, idTokenAlgorithm: alg }, 'OpenID provider discovered');
        return config;
      });
    // The mapped promise is the one kept: every caller waiting on this discovery (sign-ins, callbacks and refreshes
    // that arrived meanwhile) gets the same MeshauthError, never openid-client's own error, which the edge would
    // answer as a failed upstream instead of the provider being unavailable.
    const shared = configured.catch((cause: unknown) => {
      if (this.#config === shared) this.#config = undefined;
      this.#failedAt = Date.now();
      const own = ownErrorWithin(cause);
      this.#logger.warn({ issuer: settings.issuer, err: (own ?? (cause as Error)).message }, 'OpenID discovery failed');
      throw own ?? unavailable('discovery failed', cause);
    });
    this.#config = shared;
    return shared;
  }

  async startLogin(): Promise<LoginStart> {
    const config = await this.configuration();
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: this.#settings.redirectUri,
      scope: this.#settings.scopes.join(' '),
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { url: url.href, state, nonce, verifier };
  }

  /** Validates the authorization response and exchanges the code. Throws MESHAUTH_ERR_LOGIN_FAILED (reason). */
  async finishLogin(
    callbackQuery: string,
    expected: { readonly state: string; readonly nonce: string; readonly verifier: string },
  ): Promise<TokenResult> {
    const current = new URL(this.#settings.redirectUri);
    current.search = callbackQuery;
    // The callback's own faults first, before the provider is asked anything: a malformed callback is the
    // browser's (or whoever sent it), never a token or ID token the provider issued.
    const fault = callbackFault(current.searchParams);
    if (fault !== undefined) throw failed('callback_invalid', new Error(fault));
    const config = await this.configuration();
    try {
      const tokens = await client.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: expected.verifier,
        expectedState: expected.state,
        expectedNonce: expected.nonce,
        idTokenExpected: true,
      });
      return tokenResult(tokens, offersLogout(config), this.#settings.clientId);
    } catch (error) {
      throw classify(error);
    }
  }

  async refresh(refreshToken: string): Promise<TokenResult> {
    const config = await this.configuration();
    try {
      const tokens = await client.refreshTokenGrant(config, refreshToken);
      return tokenResult(tokens, offersLogout(config), this.#settings.clientId);
    } catch (error) {
      throw classify(error);
    }
  }

  /** RP-initiated logout URL when the provider has an end_session_endpoint, else undefined. */
  async endSessionUrl(idToken: string | undefined, postLogoutRedirectUri: string): Promise<string | undefined> {
    let config: client.Configuration;
    try {
      config = await this.configuration();
    } catch {
      return undefined;
    }
    if (!offersLogout(config)) return undefined;
    return client.buildEndSessionUrl(config, {
      post_logout_redirect_uri: postLogoutRedirectUri,
      client_id: this.#settings.clientId,
      ...(idToken === undefined ? {} : { id_token_hint: idToken }),
    }).href;
  }

  async close(): Promise<void> {
    await this.#dispatcher.close();
  }
}

function pickIdTokenAlgorithm(
  configured: string | undefined,
  supported: readonly string[] | undefined,
): string | undefined {
  if (configured !== undefined) return ASYMMETRIC_ID_TOKEN_ALGORITHM.test(configured) ? configured : undefined;
  // A provider that lists no algorithms must support RS256.
  if (supported === undefined) return 'RS256';
  return supported.find((alg) => ASYMMETRIC_ID_TOKEN_ALGORITHM.test(alg));
}

function offersLogout(config: client.Configuration): boolean {
  return config.serverMetadata().end_session_endpoint !== undefined;
}

function tokenResult(
  tokens: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers,
  keepIdToken: boolean,
  clientId: string,
): TokenResult {
  const expiresIn = tokens.expiresIn();
  const nowS = Math.floor(Date.now() / 1000);
  const idClaims = tokens.id_token === undefined ? undefined : (tokens.claims() as Record<string, unknown> | undefined);
  // openid-client compares `azp` only when `aud` has several values; an ID token issued to another party is not
  // ours to accept whatever its audience says.
  if (idClaims?.azp !== undefined && idClaims.azp !== clientId) throw failed('azp_mismatch', undefined);
  if (idClaims !== undefined && issuedAhead(idClaims, nowS)) {
    throw failed('id_token_invalid', new Error(`ID token iat ${String(idClaims.iat)} is ahead of now (${nowS})`));
  }
  return {
    idClaims,
    accessToken: tokens.access_token,
    accessExpiresAt: nowS + (expiresIn ?? DEFAULT_ACCESS_TTL_S),
    refreshToken: tokens.refresh_token,
    idToken: keepIdToken ? tokens.id_token : undefined,
    scope: tokens.scope,
  };
}

/**
 * Whether an ID token was issued later than `nowS` plus the clock tolerance its exp and nbf get. openid-client checks
 * only that `iat` is a number: a token dated ahead (and valid for years) was minted to be used later, or by a
 * provider whose clock cannot be trusted, and is refused as an expired one is (`id_token_invalid`).
 */
export function issuedAhead(claims: Readonly<Record<string, unknown>>, nowS: number): boolean {
  return typeof claims.iat === 'number' && claims.iat > nowS + ID_TOKEN_CLOCK_TOLERANCE_S;
}

function unavailable(message: string, cause: unknown): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_IDP_UNAVAILABLE', message, { reason: 'idp_unavailable', cause });
}

/**
 * What is wrong with an authorization response's parameters, or undefined: the code exactly once and not empty
 * (unless the provider answered an `error`), and each parameter that is checked at most once (a second value could
 * be read in place of the one checked).
 */
function callbackFault(params: URLSearchParams): string | undefined {
  for (const name of ['code', 'state', 'iss', 'error']) {
    if (params.getAll(name).length > 1) return `callback with ${name} more than once`;
  }
  if (params.has('error')) return undefined;
  // The code flow's answer carries a code only: tokens in it (implicit, hybrid) or a JWT-secured one are not ours.
  if (params.has('id_token') || params.has('token') || params.has('response'))
    return 'callback of another response type';
  return params.get('code') ? undefined : 'callback without a code';
}

/**
 * openid-client errors → a bounded reason (metric label, log), never the provider's text to the client. An ID
 * token's refusal stays `id_token_invalid` (or the claim that differed); the provider's faults and the callback's
 * own are named for what they are, so the operator is not sent looking for a forged ID token.
 */
function classify(error: unknown): MeshauthError {
  const own = ownErrorWithin(error);
  if (own !== undefined) return own;
  // The 10 s timeout cut an answer that had started (its body trickled): the provider is not serving, as when its
  // status line does not come. openid-client reports the body read as a parse error.
  if (timedOutWithin(error)) return unavailable('provider answer did not arrive in time', error);
  if (error instanceof client.AuthorizationResponseError) return failed('provider_error', error);
  if (error instanceof client.ResponseBodyError) {
    // A provider in trouble answers its own errors: that is an outage (502), not a refused sign-in (401).
    if (error.status >= 500 || error.error === 'server_error' || error.error === 'temporarily_unavailable') {
      return unavailable('token endpoint failed', error);
    }
    return failed(error.error === 'invalid_grant' ? 'code_rejected' : 'token_error', error);
  }
  const e = error as { code?: string; cause?: { claim?: unknown; status?: unknown; cause?: { claim?: unknown } } };
  switch (e.code) {
    case 'OAUTH_TIMEOUT':
    case 'OAUTH_ABORT':
      return unavailable('token endpoint did not answer in time', error);
    case 'OAUTH_RESPONSE_IS_NOT_CONFORM':
    case 'OAUTH_RESPONSE_IS_NOT_JSON':
    case 'OAUTH_WWW_AUTHENTICATE_CHALLENGE': {
      // An answer without an OAuth error body (a proxy's or WAF's page, a 429, a 401 challenge for the client's
      // credentials): a 5xx or 429 is the provider not serving; a 2xx that is not JSON is a token answer of the
      // wrong shape; another status a misconfigured endpoint or client. Never an ID token problem.
      const status = answerStatus(error);
      if (status >= 500 || status === 429) return unavailable(`token endpoint answered ${status}`, error);
      return failed(status >= 200 && status < 300 ? 'token_response_invalid' : 'token_error', error);
    }
    case 'OAUTH_JWT_CLAIM_COMPARISON_FAILED': {
      // openid-client wraps oauth4webapi's error; the claim that differed is on the inner one's cause.
      const claim = e.cause?.claim ?? e.cause?.cause?.claim;
      return failed(
        typeof claim === 'string' && /^[a-z_]{1,16}$/.test(claim) ? `${claim}_mismatch` : 'claim_mismatch',
        error,
      );
    }
    case 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED':
      return failed('iss_mismatch', error);
    case 'OAUTH_INVALID_REQUEST':
      return failed('callback_invalid', error);
    case 'OAUTH_INVALID_RESPONSE':
    case 'OAUTH_UNSUPPORTED_OPERATION': {
      // Which part of the exchange was refused is in the detail oauth4webapi attaches under openid-client's error:
      // the authorization response's parameters, or the token answer's body (access_token, token_type, expires_in
      // and the like). Anything else is the ID token (its header, claims or form).
      const detail = (e.cause as { cause?: unknown } | undefined)?.cause;
      if (hasOwn(detail, 'parameters')) return failed('callback_invalid', error);
      if (hasOwn(detail, 'body') && !hasOwn(detail, 'claims')) return failed('token_response_invalid', error);
      return failed('id_token_invalid', error);
    }
    case 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED':
    case 'OAUTH_KEY_SELECTION_FAILED':
    case 'OAUTH_PARSE_ERROR':
      return failed('id_token_invalid', error);
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
    case 'OAUTH_JWS_SIGNATURE_VERIFICATION_FAILED':
      return failed('id_token_signature', error);
    default:
      if (error instanceof TypeError) return unavailable('token endpoint unreachable', error);
      return failed('id_token_invalid', error);
  }
}

/** An abort or a timeout anywhere in the cause chain. */
function timedOutWithin(error: unknown): boolean {
  const timedOut = (cause: object): cause is Error =>
    cause instanceof Error && (cause.name === 'AbortError' || cause.name === 'TimeoutError');
  return causeWithin(error, timedOut) !== undefined;
}

/** The HTTP status of the provider's answer an openid-client error carries (on itself, its Response or its cause). */
function answerStatus(error: unknown): number {
  const e = error as { status?: unknown; response?: { status?: unknown }; cause?: { status?: unknown } };
  for (const status of [e.status, e.response?.status, e.cause?.status]) if (typeof status === 'number') return status;
  return 0;
}

function hasOwn(value: unknown, key: string): boolean {
  return typeof value === 'object' && value !== null && Object.hasOwn(value, key);
}

/** The refusals of an ID token: the checks of the user it names and of who issued it to whom (classify's names). */
const ID_TOKEN_REFUSALS = /^(?:[a-z_]+_mismatch|id_token_invalid|id_token_signature|no_subject)$/;

/** Whether `error` refused an ID token (rather than the provider failing, or a grant or callback being refused). */
export function refusedIdToken(error: unknown): boolean {
  return isMeshauthError(error, 'MESHAUTH_ERR_LOGIN_FAILED') && ID_TOKEN_REFUSALS.test(error.reason ?? '');
}

function failed(reason: string, cause: unknown): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_LOGIN_FAILED', `sign-in refused: ${reason}`, { reason, cause });
}

/** The client secret, trimmed (a trailing newline is not part of it); an empty file is refused at start. */
function readClientSecret(path: string): string {
  const secret = readSettingFile('oidc.clientSecretFile', path).trim();
  if (secret === '') throw unreadableSetting('oidc.clientSecretFile', path, 'empty');
  return secret;
}

/** A client secret or a CA file is a few KiB; a FIFO or a device at the path is refused, not read without end. */
const MAX_SETTING_FILE_BYTES = 256 * 1024;

/**
 * A file named by the gateway config, read at start. An unreadable one is a config problem the operator fixes: one
 * MESHAUTH_ERR_FILE_UNREADABLE naming the key, the path and the errno (exit code 2), never Node's raw error (exit 1,
 * no code). The content (a secret) is never part of the message.
 */
function readSettingFile(key: string, path: string): string {
  const what = key === 'oidc.caFile' ? 'CA file' : 'client secret file';
  return readOperatorFile(path, {
    setting: key,
    what,
    maxBytes: MAX_SETTING_FILE_BYTES,
    reason: 'oidc_file_unreadable',
  });
}

/** As readOperatorFile's refusals: a path that is a credential itself is withheld (config/secret-path.ts). */
function unreadableSetting(key: string, path: string, why: string): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_FILE_UNREADABLE', `${key}: cannot use ${shownPath(path)} (${why})`, {
    reason: 'oidc_file_unreadable',
    detail: { key },
  });
}
