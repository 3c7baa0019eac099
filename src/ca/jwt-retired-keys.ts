// The replaced JWT-SVID signing keys still published in `GET /v1/jwks` (`<dir>/jwt-retired.json`): after
// `ca rotate --jwt-key` the new key signs at once, and the old key's public half stays in the JWKS until every token
// it can have signed has expired. Pure: parsing, the retention rule, and the file's next content.
import type { JWK } from 'jose';
import { z } from 'zod';
import { MeshauthError } from '../errors/index.js';
import { JWT_SVID_MAX_TTL_MS } from './jwt-svid.js';

/**
 * How long past the rotation a retired key stays published: the longest JWT-SVID lifetime, plus the second a
 * running replica may still sign with the old key before it notices the new file, plus clock skew between the CA
 * and a verifier.
 */
export const RETIRED_KEY_MARGIN_MS = 60_000;
export const RETIRED_KEY_RETENTION_MS = JWT_SVID_MAX_TTL_MS + RETIRED_KEY_MARGIN_MS;

export interface RetiredJwtKey {
  readonly jwk: Readonly<JWK>;
  /** Until when `/v1/jwks` publishes it. */
  readonly until: Date;
}

const PublicEcJwk = z
  .object({
    kty: z.literal('EC'),
    crv: z.literal('P-256'),
    x: z.string().min(1),
    y: z.string().min(1),
    kid: z.string().min(1),
    alg: z.literal('ES256'),
    use: z.literal('sig'),
  })
  .strict(); // a private `d` must never be published from here

const RetiredFile = z.object({
  keys: z.array(z.object({ jwk: PublicEcJwk, until: z.string().datetime() }).strict()).max(64),
});

export function parseRetiredKeys(text: string, file: string): RetiredJwtKey[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', `${file} is not JSON`, { cause });
  }
  const parsed = RetiredFile.safeParse(json);
  if (!parsed.success) {
    throw new MeshauthError(
      'MESHAUTH_ERR_CONFIG_INVALID',
      `${file}: expected {"keys": [{"jwk": public ES256 JWK, "until": ISO time}]}`,
      { cause: parsed.error },
    );
  }
  return parsed.data.keys.map((entry) => ({ jwk: Object.freeze({ ...entry.jwk }), until: new Date(entry.until) }));
}

/** The keys still to publish at `now`, without `activeKid` (the active key is published once, first). */
export function liveRetiredKeys(keys: readonly RetiredJwtKey[], activeKid: string, now: Date): Readonly<JWK>[] {
  const seen = new Set([activeKid]);
  const live: Readonly<JWK>[] = [];
  for (const key of keys) {
    const kid = key.jwk.kid as string;
    if (key.until.getTime() <= now.getTime() || seen.has(kid)) continue;
    seen.add(kid);
    live.push(key.jwk);
  }
  return live;
}

/** The file after retiring `outgoing` at `now`: expired entries dropped, `outgoing` kept for the retention time. */
export function retire(keys: readonly RetiredJwtKey[], outgoing: Readonly<JWK>, now: Date): string {
  const until = new Date(now.getTime() + RETIRED_KEY_RETENTION_MS);
  const kept = keys.filter((key) => key.until.getTime() > now.getTime() && key.jwk.kid !== outgoing.kid);
  const next = [...kept, { jwk: outgoing, until }];
  return `${JSON.stringify({ keys: next.map((key) => ({ jwk: key.jwk, until: key.until.toISOString() })) }, null, 2)}\n`;
}
