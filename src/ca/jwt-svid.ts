// Mints a JWT-SVID (SPIFFE JWT-SVID spec): compact JWS, protected header exactly {alg: ES256,
// kid, typ: JWT}, `sub` = the caller's SPIFFE ID, a single `aud`, `exp` at most 5 minutes away, plus `iss`, `iat`
// and a random `jti`. The caller has authenticated `subject`; this file only signs. No I/O.
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { SpiffeId } from '../identity/index.js';
import { JWT_SVID_ALG, type JwtSigningKey } from './jwt-signing-key.js';

/** `ca serve --jwt-ttl`: default and upper bound 5 min (short-lived bearer tokens; no revocation exists). */
export const JWT_SVID_MAX_TTL_MS = 5 * 60_000;
export const JWT_SVID_MIN_TTL_MS = 30_000;

export interface MintJwtSvidOptions {
  readonly key: JwtSigningKey;
  readonly issuer: string;
  readonly subject: SpiffeId;
  readonly audience: string;
  readonly ttlMs: number;
  readonly now: Date;
  /**
   * The end of the X509-SVID the caller authenticated with: the token expires no later. A bearer token that outlived
   * the certificate it was obtained with would keep a workload's identity usable after the CA stopped renewing it.
   */
  readonly notAfter?: Date;
}

export interface MintedJwtSvid {
  readonly token: string;
  readonly jti: string;
  /** Seconds from `now` to `exp` (the OAuth `expires_in`). */
  readonly expiresIn: number;
  readonly expiresAt: Date;
}

export async function mintJwtSvid(options: MintJwtSvidOptions): Promise<MintedJwtSvid> {
  const untilNotAfter = options.notAfter === undefined ? Infinity : options.notAfter.getTime() - options.now.getTime();
  const expiresIn = Math.max(0, Math.floor(Math.min(options.ttlMs, JWT_SVID_MAX_TTL_MS, untilNotAfter) / 1000));
  const iat = Math.floor(options.now.getTime() / 1000);
  const jti = randomUUID();
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: JWT_SVID_ALG, kid: options.key.kid, typ: 'JWT' })
    .setIssuer(options.issuer)
    .setSubject(options.subject.toString())
    .setAudience([options.audience])
    .setIssuedAt(iat)
    .setExpirationTime(iat + expiresIn)
    .setJti(jti)
    .sign(options.key.privateKey);
  return { token, jti, expiresIn, expiresAt: new Date((iat + expiresIn) * 1000) };
}
