// Minting passports: the origin (at the sidecar that validated an external token) and the per-hop link (when the
// app forwards a received passport downstream). The signer is always this sidecar's current SVID.
import type { SpiffeId } from '../../identity/index.js';
import type { X509Svid } from '../../pki/index.js';
import { pooledRandomBytes } from '../../platform/index.js';
import type { EndUser } from '../end-user.js';
import { signCompact } from './compact-jws.js';
import { type ActorClaim, MAX_PASSPORT_TTL_SECONDS, PASSPORT_TTL_SECONDS, PASSPORT_TYP } from './passport-format.js';
import { sha256Base64url, signingMaterial } from './signer-cache.js';

export interface OriginOptions {
  readonly svid: X509Svid;
  readonly now: Date;
  readonly ttlSeconds?: number;
}

export interface MintOptions extends OriginOptions {
  readonly audience: SpiffeId;
}

/**
 * The origin passport, minted where the end user's token was validated and addressed to this sidecar itself. It
 * carries the verified end user and never outlives the end user's token.
 */
export function mintOriginPassport(options: OriginOptions & { readonly user: EndUser }): string {
  const self = options.svid.id.toString();
  const iat = Math.floor(options.now.getTime() / 1000);
  const userExpiresAt = options.user.expiresAt || iat + MAX_PASSPORT_TTL_SECONDS;
  const material = signingMaterial(options.svid);
  return signCompact(
    { typ: PASSPORT_TYP, x5c: material.x5c },
    {
      iss: self,
      aud: self,
      iat,
      exp: originExpiresAt(options),
      jti: pooledRandomBytes(12).toString('base64url'),
      cnf: { 'x5t#S256': material.thumbprint },
      act: { sub: self },
      usr: options.user.claims,
      uex: userExpiresAt,
    },
    material.key,
    material.algorithm,
  );
}

/** The `exp` (seconds) of the origin mintOriginPassport makes with these options: its TTL, never past the user's. */
export function originExpiresAt(options: OriginOptions & { readonly user: EndUser }): number {
  const iat = Math.floor(options.now.getTime() / 1000);
  return Math.min(iat + ttl(options), options.user.expiresAt || iat + MAX_PASSPORT_TTL_SECONDS);
}

/**
 * Whether the user's token has expired at `at`, so that an origin passport minted for it would be expired from the
 * start. Verifiers accept a token up to their clock skew past `exp`; a passport never outlives the token, so such a
 * token is refused as expired where it would be vouched for.
 */
export function expiredForPassport(user: EndUser, at: Date): boolean {
  return user.expiresAt !== 0 && user.expiresAt * 1000 <= at.getTime();
}

/** What a sidecar keeps of a passport it verified, to wrap it for the next hop. */
export interface ReceivedPassport {
  /** The header value as received. */
  readonly raw: string;
  /** The origin JWS (carried unchanged down the chain). */
  readonly origin: string;
  /** The `act` chain of the newest JWS (its `sub` is the caller). */
  readonly act: ActorClaim;
  /** Expiry (seconds) of the end user's original token: no link outlives it. */
  readonly userExpiresAt: number;
}

/** The ReceivedPassport view of an origin this sidecar minted itself (what its app will forward). */
export function ownOrigin(origin: string, self: SpiffeId, userExpiresAt: number): ReceivedPassport {
  return { raw: origin, origin, act: { sub: self.toString() }, userExpiresAt };
}

/**
 * Wraps a passport for the next hop: a new link signed by this sidecar, `aud` = the next hop, `act` extended with
 * this sidecar (or started, when this sidecar minted the origin itself).
 */
export function wrapPassport(options: MintOptions & { readonly received: ReceivedPassport }): string {
  const self = options.svid.id.toString();
  const received = options.received;
  const act: ActorClaim = received.raw === received.origin ? { sub: self } : { sub: self, act: received.act };
  const iat = Math.floor(options.now.getTime() / 1000);
  const material = signingMaterial(options.svid);
  const link = signCompact(
    { typ: PASSPORT_TYP },
    {
      iss: self,
      aud: options.audience.toString(),
      iat,
      exp: linkExpiresAt(options),
      jti: pooledRandomBytes(12).toString('base64url'),
      cnf: { 'x5t#S256': material.thumbprint },
      act,
      org: sha256Base64url(received.origin),
    },
    material.key,
    material.algorithm,
  );
  return `${link},${received.origin}`;
}

/** The `exp` (seconds) of the link wrapPassport makes with these options: its TTL, never past the user's token. */
export function linkExpiresAt(options: MintOptions & { readonly received: ReceivedPassport }): number {
  return Math.min(Math.floor(options.now.getTime() / 1000) + ttl(options), options.received.userExpiresAt);
}

function ttl(options: OriginOptions): number {
  return Math.min(options.ttlSeconds ?? PASSPORT_TTL_SECONDS, MAX_PASSPORT_TTL_SECONDS);
}
