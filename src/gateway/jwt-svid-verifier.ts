// JWT-SVIDs of this mesh's CA as API credentials for workloads outside the mesh: ES256,
// `iss` = the CA's issuer URL, `aud` one of the configured audiences, `sub` a SPIFFE ID of the trust domain, a
// short `exp`. Keys come from the CA's JWKS over TLS anchored in `ca.bundle` (the CA's own PKI), refreshed every
// few minutes and on an unknown `kid` (at most every 30 s). Failures are MESHAUTH_ERR_TOKEN_INVALID with a reason.
// Every load of the key set is counted; a failed one keeps the last good keys and warns once per kind of failure.
import { createLocalJWKSet, errors, type JSONWebKeySet, jwtVerify } from 'jose';
import { Agent } from 'undici';
import { type EndUser, endUserFromClaims } from '../authn/end-user.js';
import { END_USER_DEFAULTS } from '../authn/end-user-config.js';
import type { VerifyOptions } from '../authn/end-user-verifier.js';
import { FetchJsonError, fetchJson } from '../authn/fetch-json.js';
import { expiredForPassport } from '../authn/passport/mint-passport.js';
import { tokenInvalid } from '../authn/token-rejection.js';
import { inspectToken } from '../authn/token-shape.js';
import { readSettingFile } from '../config/index.js';
import { SpiffeId, type TrustDomain } from '../identity/index.js';
import { SingleFlight } from '../platform/index.js';
import type { Logger, Metrics } from '../telemetry/index.js';

const JWKS_PATH = '/v1/jwks';
const REFRESH_MS = 5 * 60_000;
const UNKNOWN_KID_COOLDOWN_MS = 30_000;
const MAX_TOKEN_BYTES = 8 * 1024;
/** Keys not loaded again for this long are dropped, as the end-user issuers' are. */
const MAX_STALE_MS = END_USER_DEFAULTS.jwksMaxStaleMs;

/** Why a load of the CA's key set failed: a fetch failure, or a document without one ES256 key. */
type JwksFailure = FetchJsonError['failure'] | 'no_usable_key';

export interface JwtSvidSettings {
  readonly issuer: string;
  readonly audiences: readonly string[];
}

export class JwtSvidVerifier {
  readonly #settings: JwtSvidSettings;
  readonly #trustDomain: TrustDomain;
  readonly #jwksUrl: string;
  readonly #agent: Agent;
  readonly #metrics: Metrics | undefined;
  readonly #logger: Logger;
  /** The failure of the latest load: a warning is logged when it changes, not at every attempt of an outage. */
  #failing: JwksFailure | undefined;
  #keys: ReturnType<typeof createLocalJWKSet> | undefined;
  #kids = new Set<string>();
  /** When the CA last served the keys (not when a load was last tried). */
  #loadedAt: number | undefined;
  /** When the latest load ended, whatever its outcome. */
  #fetchedAt = 0;
  /** One load at a time: tokens that arrive while one runs wait for it. */
  readonly #loads = new SingleFlight(() =>
    this.#load().finally(() => {
      this.#fetchedAt = Date.now();
    }),
  );

  constructor(options: {
    readonly settings: JwtSvidSettings;
    readonly caUrl: string;
    readonly bundleFile: string;
    readonly trustDomain: TrustDomain;
    readonly logger: Logger;
    /** Counts every load in meshauth_gateway_jwt_svid_jwks_refreshes_total. */
    readonly metrics?: Metrics;
  }) {
    this.#settings = options.settings;
    this.#trustDomain = options.trustDomain;
    this.#jwksUrl = `${options.caUrl.replace(/\/+$/, '')}${JWKS_PATH}`;
    // rejectUnauthorized explicit, so NODE_TLS_REJECT_UNAUTHORIZED=0 in the environment cannot untrust the CA.
    this.#agent = new Agent({
      connect: { ca: readBundle(options.bundleFile), timeout: 5_000, rejectUnauthorized: true },
    });
    this.#metrics = options.metrics;
    this.#logger = options.logger;
  }

  /** True when the token names this CA as its issuer (unverified: only picks the verifier). */
  claims(shapeIss: string): boolean {
    return shapeIss === this.#settings.issuer;
  }

  async verify(token: string, options: VerifyOptions = {}): Promise<EndUser> {
    try {
      const shape = inspectToken(token, MAX_TOKEN_BYTES);
      if (shape.alg !== 'ES256') throw tokenInvalid('alg_not_allowed', `JWT-SVIDs are ES256, not ${shape.alg}`);
      const sinceFetch = Date.now() - this.#fetchedAt;
      // Without keys yet, a fetch waits the cooldown after a failed one as an unknown kid does: anyone can write a
      // token naming the CA, and each would otherwise send one more request to the CA while its JWKS is failing.
      const due =
        sinceFetch > REFRESH_MS ||
        (sinceFetch > UNKNOWN_KID_COOLDOWN_MS &&
          (this.#freshKeys() === undefined || (shape.kid !== undefined && !this.#kids.has(shape.kid))));
      if (due) await this.#refresh();
      const keys = this.#freshKeys();
      if (keys === undefined) throw tokenInvalid('jwks_unavailable', 'no keys from the CA');
      const { payload } = await jwtVerify(token, keys, {
        issuer: this.#settings.issuer,
        audience: [...this.#settings.audiences],
        algorithms: ['ES256'],
        clockTolerance: 30,
        maxTokenAge: '10m',
        requiredClaims: ['sub', 'exp', 'iat'],
      });
      const id = typeof payload.sub === 'string' ? SpiffeId.tryParse(payload.sub) : undefined;
      if (id === undefined || !id.trustDomain.equals(this.#trustDomain)) {
        throw tokenInvalid('missing_sub', 'sub is not a SPIFFE ID of this trust domain');
      }
      const user = endUserFromClaims({ sub: id.toString(), iss: payload.iss, exp: payload.exp }, []);
      if (user === undefined) throw tokenInvalid('missing_sub', 'no subject');
      if (options.forPassport === true && expiredForPassport(user, new Date())) {
        throw tokenInvalid('expired', 'token has expired: no passport can be minted for it', {
          issuer: user.iss.slice(0, 200),
        });
      }
      this.#metrics?.tokenVerifications.inc({ result: 'ok' });
      return user;
    } catch (error) {
      const rejection =
        error instanceof errors.JOSEError
          ? tokenInvalid(joseReason(error), error.message)
          : error instanceof Error && 'code' in error && String(error.code).startsWith('MESHAUTH_ERR')
            ? (error as ReturnType<typeof tokenInvalid>)
            : tokenInvalid('format', 'JWT-SVID could not be verified');
      this.#metrics?.tokenVerifications.inc({ result: `jwt_svid_${rejection.reason ?? 'invalid'}` });
      throw rejection;
    }
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }

  // Keys the CA has not confirmed for max-stale are not used at all (fail closed): a gateway cut off from the CA
  // must not go on accepting a key the CA may have retired long ago.
  #freshKeys(): ReturnType<typeof createLocalJWKSet> | undefined {
    if (this.#loadedAt === undefined || Date.now() - this.#loadedAt > MAX_STALE_MS) return undefined;
    return this.#keys;
  }

  #refresh(): Promise<void> {
    return this.#loads.run();
  }

  // Never throws: a failed load keeps the previous key set (a CA outage must not refuse every workload at once).
  async #load(): Promise<void> {
    try {
      const document = await fetchJson(this.#jwksUrl, {
        timeoutMs: 3_000,
        maxBytes: 256 * 1024,
        dispatcher: this.#agent,
      });
      const keys = es256Keys(document);
      this.#keys = createLocalJWKSet({ keys });
      this.#kids = new Set(keys.map((k) => k.kid).filter((k): k is string => typeof k === 'string'));
      this.#loadedAt = Date.now();
      this.#metrics?.gatewayJwtSvidJwksRefreshes.inc({ result: 'ok' });
      const fields = { issuer: this.#settings.issuer, url: this.#jwksUrl, keys: keys.length };
      if (this.#failing !== undefined) this.#logger.info(fields, 'CA JWKS loaded again');
      else this.#logger.debug(fields, 'CA JWKS refreshed');
      this.#failing = undefined;
    } catch (error) {
      const failure: JwksFailure =
        error instanceof FetchJsonError
          ? error.failure
          : error instanceof NoUsableKey
            ? 'no_usable_key'
            : 'invalid_json';
      this.#metrics?.gatewayJwtSvidJwksRefreshes.inc({ result: failure });
      // One line per kind of failure: an outage that lasts hours logs once, a change of symptom logs again.
      if (failure !== this.#failing) {
        this.#logger.warn(
          {
            issuer: this.#settings.issuer,
            url: this.#jwksUrl,
            failure,
            err: (error as Error).message,
            cachedKeys: this.#freshKeys() === undefined ? 0 : this.#kids.size,
          },
          'CA JWKS refresh failed; keeping the last good key set',
        );
      }
      this.#failing = failure;
    }
  }
}

/** The EC P-256 keys of a JWKS document (JWT-SVIDs are ES256); throws when it is no key set or has none. */
function es256Keys(document: unknown): JSONWebKeySet['keys'] {
  const keys = (document as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) throw new FetchJsonError('invalid_json', 'the document is not a JWKS');
  const usable = keys.filter(
    (key): key is JSONWebKeySet['keys'][number] =>
      typeof key === 'object' && key !== null && key.kty === 'EC' && key.crv === 'P-256',
  );
  if (usable.length === 0) throw new NoUsableKey();
  return usable;
}

class NoUsableKey extends Error {
  override readonly name = 'NoUsableKey';
  constructor() {
    super('JWKS has no EC P-256 key');
  }
}

function joseReason(
  error: InstanceType<typeof errors.JOSEError>,
): 'expired' | 'audience' | 'issuer' | 'unknown_kid' | 'claims' | 'signature' {
  if (error.code === 'ERR_JWT_EXPIRED') return 'expired';
  if (error.code === 'ERR_JWKS_NO_MATCHING_KEY') return 'unknown_kid';
  if (error.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') {
    const claim = (error as InstanceType<typeof errors.JWTClaimValidationFailed>).claim;
    return claim === 'aud' ? 'audience' : claim === 'iss' ? 'issuer' : 'claims';
  }
  return 'signature';
}

/** `ca.bundle`, read at start: unreadable is a config problem (exit 2 naming the key), not Node's raw error. */
function readBundle(file: string): string {
  return readSettingFile(file, { setting: 'ca.bundle', what: 'trust bundle', reason: 'bundle_unreadable' });
}
