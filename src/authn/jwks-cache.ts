// One issuer's verification keys (SPEC §5): OIDC discovery, JWKS fetched with undici,
// refreshed in the background, single-flight, one rate-limited refresh for an unknown `kid`, and the last good key
// set kept while the issuer is down or serves garbage (until max-stale). Owns the keys; knows nothing of tokens.
import { importJWK } from 'jose';
import { Agent } from 'undici';
import type { Logger } from '../telemetry/index.js';
import { discoveryUrl, type EndUserTunables } from './end-user-config.js';
import { checkFetchableUrl, FetchJsonError, fetchJson } from './fetch-json.js';
import { type UsableKey, usableKeys } from './jwks-keys.js';
import { tokenInvalid } from './token-rejection.js';

export type JwksTunables = Pick<
  EndUserTunables,
  'jwksFetchTimeoutMs' | 'jwksMaxResponseBytes' | 'jwksRefreshIntervalMs' | 'unknownKidCooldownMs' | 'jwksMaxStaleMs'
>;

export type RefreshTrigger = 'startup' | 'interval' | 'unknown_kid' | 'no_keys' | 'manual';

export interface JwksCacheOptions {
  readonly issuer: string;
  /** Explicit JWKS URL; otherwise discovered from the issuer (same origin only). */
  readonly jwksUri?: string;
  readonly tunables: JwksTunables;
  readonly logger: Logger;
  /** Milliseconds since the epoch; injectable so tests drive cooldown and staleness. */
  readonly now?: () => number;
}

export interface JwksCacheStats {
  readonly keys: number;
  /** Completed fetch attempts of the JWKS document (successful or not). */
  readonly fetches: number;
  readonly lastSuccessAt: number | undefined;
}

export class JwksCache {
  readonly issuer: string;
  readonly #configuredJwksUri: string | undefined;
  readonly #tunables: JwksTunables;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #agent: Agent;
  readonly #imported = new WeakMap<UsableKey, Map<string, Promise<CryptoKey>>>();
  #discoveredJwksUri: string | undefined;
  #keys: readonly UsableKey[] = [];
  #lastSuccessAt: number | undefined;
  #lastAttemptAt = Number.NEGATIVE_INFINITY;
  #inflight: Promise<boolean> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #fetches = 0;
  #closed = false;

  constructor(options: JwksCacheOptions) {
    this.issuer = options.issuer;
    this.#configuredJwksUri = options.jwksUri;
    this.#tunables = options.tunables;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    // A private dispatcher: no proxy from the environment, bounded connect time, closed with the cache.
    this.#agent = new Agent({
      connect: { timeout: options.tunables.jwksFetchTimeoutMs },
      headersTimeout: options.tunables.jwksFetchTimeoutMs,
      bodyTimeout: options.tunables.jwksFetchTimeoutMs,
    });
  }

  /** Fetches the keys now and then every refresh interval; timers are unref'd so they never hold the process. */
  start(): void {
    if (this.#closed || this.#timer !== undefined) return;
    void this.refresh('startup');
    if (this.#tunables.jwksRefreshIntervalMs > 0) {
      this.#timer = setInterval(() => void this.refresh('interval'), this.#tunables.jwksRefreshIntervalMs);
      this.#timer.unref();
    }
  }

  /**
   * The verification key for a token's `kid` and `alg`. Throws MESHAUTH_ERR_TOKEN_INVALID with reason
   * `jwks_unavailable` (no usable key set), `unknown_kid` (after at most one rate-limited refresh) or
   * `alg_key_mismatch` (the key exists but is not for that algorithm, RFC 8725 §3.1).
   */
  async getKey(kid: string | undefined, alg: string): Promise<CryptoKey> {
    const detail = { issuer: this.issuer, ...(kid === undefined ? {} : { kid }), alg };
    if (this.#freshKeys().length === 0) {
      await this.#refreshOnDemand('no_keys');
      if (this.#freshKeys().length === 0) {
        throw tokenInvalid('jwks_unavailable', `no usable keys for issuer ${this.issuer}`, detail);
      }
    }
    let found = select(this.#freshKeys(), kid, alg);
    if (found === 'unknown_kid' && (await this.#refreshOnDemand('unknown_kid'))) {
      found = select(this.#freshKeys(), kid, alg);
    }
    if (found === 'unknown_kid') throw tokenInvalid('unknown_kid', 'no key matches the token kid', detail);
    if (found === 'alg_key_mismatch') throw tokenInvalid('alg_key_mismatch', 'key not usable with alg', detail);
    return this.#importFor(found, alg);
  }

  /** Fetches the key set once (single flight: concurrent callers share one fetch). Resolves to success. */
  refresh(trigger: RefreshTrigger = 'manual'): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    if (this.#inflight !== undefined) return this.#inflight;
    this.#lastAttemptAt = this.#now();
    this.#inflight = this.#fetchKeys(trigger).finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  get stats(): JwksCacheStats {
    return { keys: this.#keys.length, fetches: this.#fetches, lastSuccessAt: this.#lastSuccessAt };
  }

  /** Stops the background refresh and drops connections to the issuer. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#agent.destroy();
  }

  // An on-demand fetch joins one in flight, else runs at most once per cooldown (J08, J21): a flood of tokens with
  // random kids costs the issuer one request per cooldown, not one per token.
  #refreshOnDemand(trigger: RefreshTrigger): Promise<boolean> {
    if (this.#inflight !== undefined) return this.#inflight;
    if (this.#now() - this.#lastAttemptAt < this.#tunables.unknownKidCooldownMs) return Promise.resolve(false);
    return this.refresh(trigger);
  }

  // Keys older than max-stale are not used at all (J19): fail closed rather than trust keys the issuer may have
  // revoked long ago.
  #freshKeys(): readonly UsableKey[] {
    if (this.#lastSuccessAt === undefined) return [];
    if (this.#now() - this.#lastSuccessAt > this.#tunables.jwksMaxStaleMs) return [];
    return this.#keys;
  }

  async #fetchKeys(trigger: RefreshTrigger): Promise<boolean> {
    const limits = { timeoutMs: this.#tunables.jwksFetchTimeoutMs, maxBytes: this.#tunables.jwksMaxResponseBytes };
    try {
      const jwksUri = await this.#jwksUri(limits);
      let document: unknown;
      try {
        document = await fetchJson(jwksUri, { ...limits, dispatcher: this.#agent });
      } finally {
        this.#fetches++;
      }
      const { keys, rejected } = await usableKeys(document);
      if (rejected.length > 0) {
        this.#logger.warn({ issuer: this.issuer, rejected }, 'JWKS keys ignored');
      }
      if (keys.length === 0) throw new FetchJsonError('invalid_json', 'JWKS has no usable key');
      this.#keys = keys;
      this.#lastSuccessAt = this.#now();
      this.#logger.debug({ issuer: this.issuer, trigger, keys: keys.length }, 'JWKS refreshed');
      return true;
    } catch (error) {
      // The previous key set stays in place (J19, J20): a broken issuer must not log everyone out at once.
      const failure = error instanceof FetchJsonError ? error.failure : 'invalid_jwks';
      this.#logger.warn(
        { issuer: this.issuer, trigger, failure, err: (error as Error).message, cachedKeys: this.#keys.length },
        'JWKS refresh failed',
      );
      return false;
    }
  }

  // OIDC Discovery 1.0 §4.3: the document's `issuer` must equal ours exactly; its `jwks_uri` must be on the
  // issuer's origin (no SSRF through a forged discovery document, J20). Cached after the first success.
  async #jwksUri(limits: { timeoutMs: number; maxBytes: number }): Promise<string> {
    if (this.#configuredJwksUri !== undefined) return this.#configuredJwksUri;
    if (this.#discoveredJwksUri !== undefined) return this.#discoveredJwksUri;
    const url = discoveryUrl(this.issuer);
    const document = await fetchJson(url, { ...limits, dispatcher: this.#agent });
    if (typeof document !== 'object' || document === null) {
      throw new FetchJsonError('invalid_json', 'discovery document is not an object');
    }
    const { issuer, jwks_uri: jwksUri } = document as { issuer?: unknown; jwks_uri?: unknown };
    if (issuer !== this.issuer) throw new FetchJsonError('invalid_json', 'discovery issuer does not match');
    if (typeof jwksUri !== 'string' || checkFetchableUrl(jwksUri) !== undefined) {
      throw new FetchJsonError('invalid_json', 'discovery jwks_uri is missing or not allowed');
    }
    if (new URL(jwksUri).origin !== new URL(url).origin) {
      throw new FetchJsonError('invalid_json', 'discovery jwks_uri is on another origin; configure jwksUri explicitly');
    }
    this.#discoveredJwksUri = jwksUri;
    return jwksUri;
  }

  #importFor(key: UsableKey, alg: string): Promise<CryptoKey> {
    let byAlg = this.#imported.get(key);
    if (byAlg === undefined) {
      byAlg = new Map();
      this.#imported.set(key, byAlg);
    }
    let imported = byAlg.get(alg);
    if (imported === undefined) {
      imported = importJWK(key.jwk, alg) as Promise<CryptoKey>;
      byAlg.set(alg, imported);
    }
    return imported;
  }
}

// `kid` is only a map key (RFC 8725 §3.10). Without a kid, exactly one compatible key must exist (J08).
function select(
  keys: readonly UsableKey[],
  kid: string | undefined,
  alg: string,
): UsableKey | 'unknown_kid' | 'alg_key_mismatch' {
  const candidates = kid === undefined ? keys : keys.filter((key) => key.kid === kid);
  if (candidates.length === 0) return 'unknown_kid';
  const compatible = candidates.filter((key) => key.algorithms.has(alg));
  if (compatible.length === 0) return 'alg_key_mismatch';
  if (compatible.length > 1) return 'unknown_kid';
  return compatible[0] as UsableKey;
}
