// What end-user token validation needs from `inbound.endUser` plus its tunables, and the one check
// that rejects unsafe settings at start-up (algorithms from an allow-list, never `none`, never HMAC, so a token
// cannot pick a weaker check).
// The config module owns parsing; this file only states the shape this area relies on and validates it.
import { JWKS_FILE_HINT } from '../config/jwks-file-hint.js';
import { MeshauthError } from '../errors/index.js';
import { checkFetchableUrl } from './fetch-json.js';
import { checkJwksFileUri, isFileUri } from './jwks-file.js';
import { MAX_TOKEN_LIFETIME_SECONDS } from './token-lifetime.js';

export { JWKS_FILE_HINT };

export interface EndUserIssuerConfig {
  /** Exact `iss` value; also the base of OIDC discovery when `jwksUri` is absent. */
  readonly issuer: string;
  /** At least one; a token must carry one of them in `aud` (so a token minted for another service is refused). */
  readonly audiences: readonly string[];
  /**
   * JWKS URL; when absent, taken from `<issuer>/.well-known/openid-configuration` (same origin only). A
   * `file:///absolute/path.json` names a local JWKS file, checked for changes every `jwksFileCheckIntervalMs`.
   */
  readonly jwksUri?: string;
  /** PEM file of the CAs trusted (instead of the system roots) for https to this issuer's discovery and JWKS. */
  readonly caFile?: string;
  /** Allow-list of JWS algorithms for this issuer (asymmetric only). */
  readonly algorithms: readonly string[];
  /** Required `typ` header (e.g. `at+jwt`, an access token). Without it, `typ` may be absent, JWT, JOSE or at+jwt. */
  readonly typ?: string;
}

export interface EndUserConfig {
  /** When true, a request without a bearer token is refused (401 `Bearer`). */
  readonly required: boolean;
  readonly issuers: readonly EndUserIssuerConfig[];
  /** SPIFFE IDs allowed to vouch for end users in a passport (used by the passport verifier, not here). */
  readonly vouchers: readonly string[];
  /** Claims copied into `x-meshauth-user` next to `sub` and `iss`, e.g. scope, groups. */
  readonly claims: readonly string[];
}

export interface EndUserTunables {
  /** Leeway for exp/nbf/iat, seconds (default 30, max 60). */
  readonly clockSkewSeconds: number;
  /** Largest token accepted, in bytes; larger ones are rejected before any decoding. */
  readonly maxTokenBytes: number;
  readonly jwksFetchTimeoutMs: number;
  readonly jwksMaxResponseBytes: number;
  /** Background JWKS refresh period. */
  readonly jwksRefreshIntervalMs: number;
  /** Minimum time between two on-demand fetches (unknown `kid`, or no keys yet). */
  readonly unknownKidCooldownMs: number;
  /** Cached keys are dropped (fail closed) when the last successful fetch is older than this. */
  readonly jwksMaxStaleMs: number;
  /** How often a `file:` JWKS is stat'ed for a replacement (and the shortest time between two checks). */
  readonly jwksFileCheckIntervalMs: number;
  /** A token whose `exp` lies further ahead (plus the skew) is refused as `lifetime` (token-lifetime.ts). */
  readonly maxTokenLifetimeSeconds: number;
}

export const END_USER_DEFAULTS: EndUserTunables = Object.freeze({
  clockSkewSeconds: 30,
  maxTokenBytes: 16 * 1024,
  jwksFetchTimeoutMs: 3_000,
  jwksMaxResponseBytes: 256 * 1024,
  jwksRefreshIntervalMs: 5 * 60_000,
  unknownKidCooldownMs: 30_000,
  jwksMaxStaleMs: 24 * 60 * 60_000,
  jwksFileCheckIntervalMs: 1_000,
  maxTokenLifetimeSeconds: MAX_TOKEN_LIFETIME_SECONDS,
});

export const MAX_CLOCK_SKEW_SECONDS = 60;

/** Asymmetric JWS algorithms we accept in config (the JWT-SVID set plus EdDSA). HS* and `none` never. */
export const SUPPORTED_ALGORITHMS: ReadonlySet<string> = new Set([
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
]);

const CLAIM_NAME = /^[A-Za-z0-9_:.-]{1,64}$/;

/**
 * Where the settings came from, for messages: the config file and the key paths of the issuer and claim lists
 * (the sidecar's `inbound.endUser.issuers`; the gateway's `apiIssuers`), so an error names what the user wrote.
 */
export interface EndUserConfigOrigin {
  readonly source?: string;
  /** Default `inbound.endUser.issuers`. */
  readonly issuersKey?: string;
  /** Default `inbound.endUser.claims`. */
  readonly claimsKey?: string;
  /**
   * The variable that set the settings over the file (MESHAUTH_INBOUND_END_USER, e.g. from a pod's end-user
   * ConfigMap), named after the key as the config loader names it: the file may not hold them at all.
   */
  readonly variable?: string;
}

/**
 * `FILE: inbound.endUser.issuers[i].FIELD` (or the gateway's `apiIssuers[i]`, and ` (from VARIABLE)` when a variable
 * set it): how messages name one issuer entry, or one field of it.
 */
export function endUserIssuerKey(origin: EndUserConfigOrigin, index: number, field?: string): string {
  const where = origin.source === undefined ? '' : `${origin.source}: `;
  const key = `${origin.issuersKey ?? 'inbound.endUser.issuers'}[${index}]${field === undefined ? '' : `.${field}`}`;
  return `${where}${key}${fromVariable(origin.variable)}`;
}

function fromVariable(variable: string | undefined): string {
  return variable === undefined ? '' : ` (from ${variable})`;
}

function refuse(source: string | undefined, key: string, message: string, variable?: string): never {
  const where = source === undefined ? '' : `${source}: `;
  throw new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', `${where}${key}${fromVariable(variable)}: ${message}`, {
    reason: 'end_user',
    detail: { ...(source === undefined ? {} : { file: source }), key, ...(variable === undefined ? {} : { variable }) },
  });
}

/** Throws MESHAUTH_ERR_CONFIG_INVALID naming the file and the key when the config is unsafe or incomplete. */
export function validateEndUserConfig(config: EndUserConfig, origin: EndUserConfigOrigin = {}): void {
  const invalid = (message: string, key: string): never => refuse(origin.source, key, message, origin.variable);
  const issuersKey = origin.issuersKey ?? 'inbound.endUser.issuers';
  const seen = new Set<string>();
  config.issuers.forEach((issuer, i) => {
    const key = `${issuersKey}[${i}]`;
    if (typeof issuer.issuer !== 'string' || issuer.issuer === '') invalid('issuer must be a non-empty string', key);
    if (seen.has(issuer.issuer)) invalid(`issuer ${issuer.issuer} is listed twice`, key);
    seen.add(issuer.issuer);
    if (issuer.audiences.length === 0 || issuer.audiences.some((a) => typeof a !== 'string' || a === '')) {
      invalid('audiences must list at least one non-empty audience (RFC 8725 §3.9)', `${key}.audiences`);
    }
    if (issuer.algorithms.length === 0) invalid('algorithms must list at least one algorithm', `${key}.algorithms`);
    for (const alg of issuer.algorithms) {
      if (!SUPPORTED_ALGORITHMS.has(alg)) {
        invalid(
          `algorithm ${JSON.stringify(alg)} is not allowed; use asymmetric ones (RS*, PS*, ES*, EdDSA), never none or HS*`,
          `${key}.algorithms`,
        );
      }
    }
    if (issuer.typ !== undefined && !/^[A-Za-z0-9.+/-]{1,64}$/.test(issuer.typ))
      invalid('typ is malformed', `${key}.typ`);
    // Only an explicit jwksUri may name a file: the issuer itself is always a URL discovery can fetch.
    const fetchUrl = issuer.jwksUri ?? discoveryUrl(issuer.issuer);
    const fromFile = issuer.jwksUri !== undefined && isFileUri(issuer.jwksUri);
    const problem = fromFile ? checkJwksFileUri(fetchUrl) : checkFetchableUrl(fetchUrl);
    if (problem !== undefined) {
      if (issuer.jwksUri === undefined) invalid(problem, `${key}.issuer`);
      // A user without an identity provider to reach may not know a key set can be a local file.
      invalid(fromFile ? problem : `${problem}; ${JWKS_FILE_HINT}`, `${key}.jwksUri`);
    }
    if (issuer.caFile !== undefined) {
      if (typeof issuer.caFile !== 'string' || issuer.caFile === '')
        invalid('caFile must be a file path', `${key}.caFile`);
      if (!fetchUrl.toLowerCase().startsWith('https:')) {
        invalid('caFile applies only to an https JWKS or discovery URL', `${key}.caFile`);
      }
    }
  });
  for (const claim of config.claims) {
    // `__proto__` fits the pattern, but copying it into a claims object would set that object's prototype.
    if (!CLAIM_NAME.test(claim) || claim === '__proto__') {
      invalid(`claim name ${JSON.stringify(claim)} is malformed`, origin.claimsKey ?? 'inbound.endUser.claims');
    }
  }
}

/** Fills defaults and checks bounds; validating and defaulting are separate steps. */
export function resolveEndUserTunables(partial: Partial<EndUserTunables> = {}): EndUserTunables {
  const t: EndUserTunables = { ...END_USER_DEFAULTS, ...partial };
  if (!(t.clockSkewSeconds >= 0 && t.clockSkewSeconds <= MAX_CLOCK_SKEW_SECONDS)) {
    refuse(
      undefined,
      'inbound.endUser.clockSkewSeconds',
      `clock skew must be between 0 and ${MAX_CLOCK_SKEW_SECONDS} s`,
    );
  }
  for (const [name, value] of Object.entries(t)) {
    if (!Number.isFinite(value) || value < 0)
      refuse(undefined, `inbound.endUser.${name}`, 'must be a non-negative number');
  }
  return Object.freeze(t);
}

/** The OIDC discovery URL: the issuer with any trailing `/` removed, then `/.well-known/openid-configuration`. */
export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
}
