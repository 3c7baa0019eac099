// The cluster's service-account signing keys for `ca serve --k8s-jwks`: a JWKS file reloaded when it changes (a
// ConfigMap update, a key rotation copied by an operator), or an https URL — given, or found in the issuer's OIDC
// discovery document — fetched through the cluster API client, refreshed in the background, re-fetched at most
// once per cooldown when a token names an unknown `kid`, and the last good key set kept while the source fails.
import { importedKey, jwksFileFingerprint, readJwksFile, type UsableKey, usableKeys } from '../authn/index.js';
import { MeshauthError } from '../errors/index.js';
import { SingleFlight } from '../platform/index.js';
import type { Logger } from '../telemetry/index.js';
import type { ClusterApiClient } from './cluster-api-client.js';

const REMOTE_REFRESH_INTERVAL_MS = 5 * 60_000;
const UNKNOWN_KID_COOLDOWN_MS = 10_000;
/** A cluster publishes a handful of keys; a file past this is not a JWKS (same bound as an issuer's JWKS). */
const MAX_JWKS_FILE_BYTES = 256 * 1024;

export interface ClusterKeySource {
  /** The key for a token header, or MeshauthError: CA_UNAUTHENTICATED `sa_token_invalid` (no such key) or
   * CA_UNAVAILABLE `sa_jwks_unavailable` (no key set at all). */
  getKey(kid: string | undefined, alg: string): Promise<CryptoKey>;
  close(): Promise<void>;
}

export function isJwksUrl(jwks: string): boolean {
  return /^https?:\/\//i.test(jwks);
}

/** `kid` is only a lookup key (never trusted for anything else); without one, exactly one compatible key must exist. */
export function selectKey(keys: readonly UsableKey[], kid: string | undefined, alg: string): UsableKey | undefined {
  const candidates = keys.filter((key) => (kid === undefined || key.kid === kid) && key.algorithms.has(alg));
  return candidates.length === 1 ? candidates[0] : undefined;
}

export class JwksFileKeys implements ClusterKeySource {
  readonly #file: string;
  readonly #logger: Logger;
  #keys: readonly UsableKey[];
  #fingerprint: string;
  readonly #reloads = new SingleFlight(() => this.#reload());

  private constructor(file: string, logger: Logger, keys: readonly UsableKey[], fingerprint: string) {
    this.#file = file;
    this.#logger = logger;
    this.#keys = keys;
    this.#fingerprint = fingerprint;
  }

  /** Reads the file once; a missing or invalid file at start is a configuration error (exit 2). */
  static async open(file: string, logger: Logger): Promise<JwksFileKeys> {
    const fingerprint = await fileFingerprint(file);
    return new JwksFileKeys(file, logger, await readClusterKeys(file, logger), fingerprint);
  }

  async getKey(kid: string | undefined, alg: string): Promise<CryptoKey> {
    // One stat(2) per bootstrap (rare: once per pod start) makes a rotated or removed key count from the next token.
    await this.#reloads.run();
    const found = selectKey(this.#keys, kid, alg);
    if (found === undefined) throw noKey();
    return importedKey(found, alg);
  }

  async close(): Promise<void> {}

  async #reload(): Promise<void> {
    const fingerprint = await fileFingerprint(this.#file);
    if (fingerprint === this.#fingerprint) return;
    try {
      this.#keys = await readClusterKeys(this.#file, this.#logger);
      this.#fingerprint = fingerprint;
      this.#logger.info(
        { event: 'k8s_jwks_reloaded', file: this.#file, keys: this.#keys.length },
        'cluster JWKS reloaded',
      );
    } catch (error) {
      // Half-written or broken: the keys loaded last keep verifying; the next check retries.
      this.#logger.warn({ event: 'k8s_jwks_reload_failed', file: this.#file, err: error }, 'cluster JWKS not reloaded');
    }
  }
}

export interface RemoteKeysOptions {
  readonly issuer: string;
  /** Explicit JWKS URL; otherwise `jwks_uri` of the issuer's discovery document. */
  readonly jwksUrl?: string;
  readonly client: ClusterApiClient;
  readonly logger: Logger;
}

export class RemoteJwksKeys implements ClusterKeySource {
  readonly #options: RemoteKeysOptions;
  #jwksUrl: string | undefined;
  #keys: readonly UsableKey[] = [];
  #inflight: Promise<boolean> | undefined;
  /** Of the last refresh a token's unknown kid caused (the periodic and start-up fetches do not count). */
  #lastOnDemand = Number.NEGATIVE_INFINITY;
  readonly #timer: NodeJS.Timeout;

  constructor(options: RemoteKeysOptions) {
    this.#options = options;
    this.#jwksUrl = options.jwksUrl;
    void this.refresh();
    this.#timer = setInterval(() => void this.refresh(), REMOTE_REFRESH_INTERVAL_MS);
    this.#timer.unref();
  }

  async getKey(kid: string | undefined, alg: string): Promise<CryptoKey> {
    if (this.#inflight !== undefined) await this.#inflight;
    let found = selectKey(this.#keys, kid, alg);
    if (found === undefined && (await this.#refreshOnDemand())) found = selectKey(this.#keys, kid, alg);
    if (found !== undefined) return importedKey(found, alg);
    if (this.#keys.length === 0) {
      throw new MeshauthError('MESHAUTH_ERR_CA_UNAVAILABLE', 'cluster JWKS unavailable', {
        reason: 'sa_jwks_unavailable',
      });
    }
    throw noKey();
  }

  /** Fetches the key set now (single flight). Resolves to success; the previous set stays on failure. */
  refresh(): Promise<boolean> {
    this.#inflight ??= this.#fetch().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
  }

  #refreshOnDemand(): Promise<boolean> {
    if (this.#inflight !== undefined) return this.#inflight;
    if (Date.now() - this.#lastOnDemand < UNKNOWN_KID_COOLDOWN_MS) return Promise.resolve(false);
    this.#lastOnDemand = Date.now();
    return this.refresh();
  }

  async #fetch(): Promise<boolean> {
    const { client, logger, issuer } = this.#options;
    try {
      this.#jwksUrl ??= await discoverJwksUrl(client, issuer);
      const { keys, rejected } = await usableKeys(await client.getJson(this.#jwksUrl));
      if (rejected.length > 0) logger.warn({ event: 'k8s_jwks_keys_ignored', rejected }, 'cluster JWKS keys ignored');
      if (keys.length === 0) throw new Error('the JWKS holds no usable signing key');
      const changed = keys.length !== this.#keys.length || keys.some((key, i) => key.kid !== this.#keys[i]?.kid);
      this.#keys = keys;
      if (changed) logger.info({ event: 'k8s_jwks_fetched', url: this.#jwksUrl, keys: keys.length }, 'cluster JWKS');
      return true;
    } catch (error) {
      logger.warn(
        { event: 'k8s_jwks_fetch_failed', url: this.#jwksUrl ?? issuer, err: error, cachedKeys: this.#keys.length },
        'cannot fetch the cluster JWKS; keeping the keys fetched last',
      );
      return false;
    }
  }
}

/** The discovery document's `issuer` must equal ours byte for byte; `jwks_uri` must be https. */
async function discoverJwksUrl(client: ClusterApiClient, issuer: string): Promise<string> {
  const document = (await client.getJson(`${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`)) as {
    issuer?: unknown;
    jwks_uri?: unknown;
  } | null;
  if (document?.issuer !== issuer) throw new Error('the discovery document names another issuer');
  if (typeof document.jwks_uri !== 'string' || !/^https:\/\//.test(document.jwks_uri)) {
    throw new Error('the discovery document has no https jwks_uri');
  }
  return document.jwks_uri;
}

async function readClusterKeys(file: string, logger: Logger): Promise<readonly UsableKey[]> {
  let document: unknown;
  try {
    ({ document } = await readJwksFile(file, MAX_JWKS_FILE_BYTES));
  } catch (cause) {
    throw new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', `--k8s-jwks ${file} is not a readable JSON file`, {
      cause,
    });
  }
  let result: Awaited<ReturnType<typeof usableKeys>>;
  try {
    result = await usableKeys(document);
  } catch (cause) {
    throw new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', `--k8s-jwks ${file} is not a JWKS`, { cause });
  }
  if (result.rejected.length > 0) logger.warn({ file, rejected: result.rejected }, 'cluster JWKS keys ignored');
  if (result.keys.length === 0) {
    throw new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', `--k8s-jwks ${file} holds no usable signing key`);
  }
  return result.keys;
}

async function fileFingerprint(file: string): Promise<string> {
  return jwksFileFingerprint(file).catch(() => 'missing');
}

function noKey(): MeshauthError {
  return new MeshauthError(
    'MESHAUTH_ERR_CA_UNAUTHENTICATED',
    'service-account token rejected: no single cluster key matches the token kid and alg',
    { reason: 'sa_token_invalid' },
  );
}
