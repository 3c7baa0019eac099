// One issuer's verification keys: OIDC discovery, JWKS fetched with undici,
// refreshed in the background, single-flight, one rate-limited refresh for an unknown `kid`, and the last good key
// set kept while the issuer is down or serves garbage (until max-stale). A `file:` jwksUri is a local file instead,
// stat'ed on a short interval and read again when it was replaced. Owns the keys; knows nothing of tokens.
import type { Agent } from 'undici';
import { readSettingFile } from '../config/read-setting-file.js';
import { loadUndici } from '../platform/index.js';
import type { Logger, Metrics } from '../telemetry/index.js';
import { discoveryUrl, type EndUserTunables, JWKS_FILE_HINT } from './end-user-config.js';
import { checkFetchableUrl, FetchJsonError, fetchJson } from './fetch-json.js';
import { isFileUri, JwksFileError, jwksFileFingerprint, jwksFilePath, readJwksFile } from './jwks-file.js';
import { importedKey, type UsableKey, usableKeys } from './jwks-keys.js';
import { tokenInvalid } from './token-rejection.js';

export type JwksTunables = Pick<
  EndUserTunables,
  | 'jwksFetchTimeoutMs'
  | 'jwksMaxResponseBytes'
  | 'jwksRefreshIntervalMs'
  | 'unknownKidCooldownMs'
  | 'jwksMaxStaleMs'
  | 'jwksFileCheckIntervalMs'
>;

/** Why a key-set load failed: a fetch failure, a file failure, or a document without one usable key. */
export type JwksFailure = FetchJsonError['failure'] | JwksFileError['failure'] | 'no_usable_key';

/** The failures of a URL that could not be reached (no answer, or none in time), as opposed to a bad answer. */
const UNREACHABLE: ReadonlySet<JwksFailure> = new Set(['network', 'timeout']);

export type RefreshTrigger = 'startup' | 'interval' | 'unknown_kid' | 'no_keys' | 'manual';

export interface JwksCacheOptions {
  readonly issuer: string;
  /** Explicit JWKS URL (https, http to loopback, or file:///path); otherwise discovered from the issuer. */
  readonly jwksUri?: string;
  /** PEM file of the CAs trusted for https to the issuer (read once, here); system roots otherwise. */
  readonly caFile?: string;
  /** Where caFile was set, named when it cannot be read, e.g. `sidecar.yaml: inbound.endUser.issuers[0].caFile`. */
  readonly caFileKey?: string;
  readonly tunables: JwksTunables;
  readonly logger: Logger;
  /** Counts every load in meshauth_enduser_jwks_refreshes_total. */
  readonly metrics?: Metrics;
  /** Milliseconds since the epoch; injectable so tests drive cooldown and staleness. */
  readonly now?: () => number;
}

export interface JwksCacheStats {
  readonly keys: number;
  /** Completed fetch attempts of the JWKS document, or reads of a changed JWKS file (successful or not). */
  readonly fetches: number;
  readonly lastSuccessAt: number | undefined;
}

export class JwksCache {
  readonly issuer: string;
  readonly #configuredJwksUri: string | undefined;
  readonly #tunables: JwksTunables;
  readonly #logger: Logger;
  readonly #metrics: Metrics | undefined;
  readonly #now: () => number;
  /** Made on the first fetch (undici is loaded only then: a file or no end users never loads it). */
  #agent: Agent | undefined;
  readonly #agentOptions: Agent.Options;
  /** The local path when jwksUri is a `file:` URI. */
  readonly #file: string | undefined;
  /** The file version the current keys came from. */
  #loadedFingerprint: string | undefined;
  /** A file version (or stat failure) already counted and logged as a failure: not read or logged again. */
  #failedFingerprint: string | undefined;
  /** The failure of the latest attempt: a warning is logged when it changes, not at every attempt of an outage. */
  #failing: JwksFailure | undefined;
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
    this.#metrics = options.metrics;
    this.#now = options.now ?? Date.now;
    this.#file =
      options.jwksUri !== undefined && isFileUri(options.jwksUri) ? jwksFilePath(options.jwksUri) : undefined;
    const caFileKey = options.caFileKey ?? `inbound.endUser issuer ${this.issuer}: caFile`;
    const ca = options.caFile === undefined ? undefined : readCaFile(options.caFile, caFileKey);
    // A private dispatcher: no proxy from the environment, bounded connect time, closed with the cache.
    // rejectUnauthorized explicit: left out, node:tls takes it from NODE_TLS_REJECT_UNAUTHORIZED, and =0 in the
    // environment would let any server on the JWKS path sign end users.
    this.#agentOptions = {
      connect: {
        timeout: options.tunables.jwksFetchTimeoutMs,
        rejectUnauthorized: true,
        ...(ca === undefined ? {} : { ca }),
      },
      headersTimeout: options.tunables.jwksFetchTimeoutMs,
      bodyTimeout: options.tunables.jwksFetchTimeoutMs,
    };
  }

  /**
   * Fetches the keys now and then every refresh interval (a file: checks it every file-check interval); timers are
   * unref'd so they never hold the process.
   */
  start(): void {
    if (this.#closed || this.#timer !== undefined) return;
    void this.refresh('startup');
    const interval =
      this.#file === undefined ? this.#tunables.jwksRefreshIntervalMs : this.#tunables.jwksFileCheckIntervalMs;
    if (interval > 0) {
      this.#timer = setInterval(() => void this.refresh('interval'), interval);
      this.#timer.unref();
    }
  }

  /**
   * The verification key for a token's `kid` and `alg`. Throws MESHAUTH_ERR_TOKEN_INVALID with reason
   * `jwks_unavailable` (no usable key set), `unknown_kid` (after at most one rate-limited refresh),
   * `alg_key_mismatch` (the key exists but is not for that algorithm: one key, one algorithm) or `ambiguous_key` (the
   * issuer publishes several keys the token could mean: its key set is at fault, so no refresh is asked for).
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
    if (found === 'ambiguous_key') {
      throw tokenInvalid('ambiguous_key', 'more than one key of the issuer matches the token kid and alg', detail);
    }
    if (found === 'alg_key_mismatch') throw tokenInvalid('alg_key_mismatch', 'key not usable with alg', detail);
    return importedKey(found, alg);
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
    await this.#agent?.destroy();
  }

  /** The private dispatcher, made on first use; none once closed (a fetch racing close() fails, leaving nothing open). */
  async #dispatcher(): Promise<Agent> {
    if (this.#agent === undefined) {
      const { Agent } = await loadUndici();
      if (this.#closed) throw new FetchJsonError('network', 'key cache closed');
      this.#agent ??= new Agent(this.#agentOptions);
    }
    return this.#agent;
  }

  // An on-demand fetch joins one in flight, else runs at most once per cooldown (J08, J21): a flood of tokens with
  // random kids costs the issuer one request per cooldown, not one per token. A file costs only a stat: its
  // cooldown is the file-check interval.
  #refreshOnDemand(trigger: RefreshTrigger): Promise<boolean> {
    if (this.#inflight !== undefined) return this.#inflight;
    const cooldown =
      this.#file === undefined
        ? this.#tunables.unknownKidCooldownMs
        : Math.min(this.#tunables.unknownKidCooldownMs, this.#tunables.jwksFileCheckIntervalMs);
    if (this.#now() - this.#lastAttemptAt < cooldown) return Promise.resolve(false);
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
    const source = this.#file === undefined ? 'url' : 'file';
    let fingerprint: string | undefined;
    try {
      let document: unknown;
      if (this.#file === undefined) {
        document = await this.#fetchDocument();
      } else {
        try {
          fingerprint = await jwksFileFingerprint(this.#file);
        } catch (error) {
          // A missing file has a fingerprint too, so that a long absence is counted and logged once.
          fingerprint = `missing:${(error as Error).message}`;
          throw error;
        }
        // Unchanged since the last good read: the keys are confirmed as current (max-stale counts from here).
        if (fingerprint === this.#loadedFingerprint) {
          this.#lastSuccessAt = this.#now();
          return true;
        }
        if (fingerprint === this.#failedFingerprint) return false;
        this.#fetches++;
        const read = await readJwksFile(this.#file, this.#tunables.jwksMaxResponseBytes);
        fingerprint = read.fingerprint;
        document = read.document;
      }
      const { keys, rejected } = await usableKeys(document);
      if (rejected.length > 0) {
        this.#logger.warn({ issuer: this.issuer, source, rejected }, 'JWKS keys ignored');
      }
      if (keys.length === 0) throw new NoUsableKey();
      this.#keys = keys;
      this.#lastSuccessAt = this.#now();
      this.#loadedFingerprint = fingerprint;
      this.#failedFingerprint = undefined;
      this.#metrics?.enduserJwksRefreshes.inc({ source, result: 'ok' });
      if (this.#failing !== undefined) {
        this.#logger.info({ issuer: this.issuer, source, trigger, keys: keys.length }, 'JWKS loaded again');
      } else {
        this.#logger.debug({ issuer: this.issuer, source, trigger, keys: keys.length }, 'JWKS refreshed');
      }
      this.#failing = undefined;
      return true;
    } catch (error) {
      // A file already known to be bad (or missing) is neither counted nor logged again until it changes.
      if (fingerprint !== undefined && fingerprint === this.#failedFingerprint) return false;
      if (fingerprint !== undefined) this.#failedFingerprint = fingerprint;
      // The previous key set stays in place (J19, J20): a broken issuer must not log everyone out at once.
      const failure: JwksFailure =
        error instanceof FetchJsonError || error instanceof JwksFileError
          ? error.failure
          : error instanceof NoUsableKey
            ? 'no_usable_key'
            : 'invalid_json';
      this.#metrics?.enduserJwksRefreshes.inc({ source, result: failure });
      // One line per kind of failure: an outage that lasts hours logs once, a change of symptom logs again.
      if (failure !== this.#failing || source === 'file') {
        this.#logger.warn(
          {
            issuer: this.issuer,
            source,
            trigger,
            failure,
            err: (error as Error).message,
            cachedKeys: this.#freshKeys().length,
            // An issuer that cannot be reached at all may be one the user never meant to run: the key set can be
            // a local file instead.
            ...(UNREACHABLE.has(failure) ? { hint: JWKS_FILE_HINT } : {}),
          },
          'JWKS refresh failed; keeping the last good key set',
        );
      }
      this.#failing = failure;
      return false;
    }
  }

  async #fetchDocument(): Promise<unknown> {
    const limits = { timeoutMs: this.#tunables.jwksFetchTimeoutMs, maxBytes: this.#tunables.jwksMaxResponseBytes };
    const jwksUri = await this.#jwksUri(limits);
    try {
      return await fetchJson(jwksUri, { ...limits, dispatcher: await this.#dispatcher() });
    } finally {
      this.#fetches++;
    }
  }

  // The discovery document's `issuer` must equal ours exactly; its `jwks_uri` must be on the
  // issuer's origin (no SSRF through a forged discovery document, J20). Cached after the first success.
  async #jwksUri(limits: { timeoutMs: number; maxBytes: number }): Promise<string> {
    if (this.#configuredJwksUri !== undefined) return this.#configuredJwksUri;
    if (this.#discoveredJwksUri !== undefined) return this.#discoveredJwksUri;
    const url = discoveryUrl(this.issuer);
    const document = await fetchJson(url, { ...limits, dispatcher: await this.#dispatcher() });
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
}

// `kid` is only a map key (never used as a path or in a query: it is attacker input). Without a kid, exactly one
// compatible key must exist (J08).
function select(
  keys: readonly UsableKey[],
  kid: string | undefined,
  alg: string,
): UsableKey | 'unknown_kid' | 'alg_key_mismatch' | 'ambiguous_key' {
  const candidates = kid === undefined ? keys : keys.filter((key) => key.kid === kid);
  if (candidates.length === 0) return 'unknown_kid';
  const compatible = candidates.filter((key) => key.algorithms.has(alg));
  if (compatible.length === 0) return 'alg_key_mismatch';
  if (compatible.length > 1) return 'ambiguous_key';
  return compatible[0] as UsableKey;
}

class NoUsableKey extends Error {
  override readonly name = 'NoUsableKey';
  constructor() {
    super('JWKS has no usable key');
  }
}

function readCaFile(file: string, key: string): string {
  // Bounded and regular files only: a FIFO at the path blocked the start, a directory printed a bare EISDIR.
  return readSettingFile(file, { setting: key, what: 'CA file', reason: 'end_user' });
}
