// The replaced JWT-SVID signing keys still published in `GET /v1/jwks` (`<dir>/jwt-retired.json`): after
// `ca rotate --jwt-key` the new key is published at once and signs after JWT_KEY_PUBLICATION_DELAY_MS
// (jwt-key-ring.ts), and the old key's public half stays in the JWKS until every token it can have signed has
// expired. Pure: parsing, the retention rule, and the file's next content.
import type { JWK } from 'jose';
import { z } from 'zod';
import { MeshauthError } from '../errors/index.js';
import { JWT_SVID_MAX_TTL_MS } from './jwt-svid.js';

/**
 * How long a new key is in `/v1/jwks` before it signs. A verifier that refetches the JWKS on an unknown `kid` still
 * waits out a cooldown first (30 s in the gateway's JwtSvidVerifier and in jose's createRemoteJWKSet): signing at
 * once got new tokens refused for that long. Two minutes cover that cooldown, the replicas' one-second file check
 * and the minute or so between the kubelets of two CA pods delivering the same Secret update, so by the time any
 * replica signs with the key, every replica publishes it and no verifier is still in its cooldown.
 */
export const JWT_KEY_PUBLICATION_DELAY_MS = 120_000;

/**
 * How long past its last signature a retired key stays published: the longest JWT-SVID lifetime, plus the second a
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

/** Entries the file may hold: the parser refuses more, so `retire` never writes more. */
export const MAX_RETIRED_KEYS = 64;

const RetiredFile = z.object({
  keys: z.array(z.object({ jwk: PublicEcJwk, until: z.string().datetime() }).strict()).max(MAX_RETIRED_KEYS),
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

/**
 * The file after retiring `outgoing` at `now` (a rotation): expired entries dropped, `outgoing` kept while it may
 * still sign (the new key's publication delay) and for the retention time after that. Each running replica also
 * keeps it for the retention time after its own switch (jwt-key-ring.ts); the file is what a replica that starts
 * later knows. A key retired less than the publication delay ago may still be signing too: the running replicas
 * never switched to the key it gave way to, which this rotation replaces, so they sign with it until the new key's
 * delay is up; it is kept as long as `outgoing`. Past MAX_RETIRED_KEYS live entries (rotations in a loop) the ones
 * that leave soonest go first: a file the parser refuses would stop every replica from loading its keys.
 */
export function retire(keys: readonly RetiredJwtKey[], outgoing: Readonly<JWK>, now: Date): string {
  const until = new Date(now.getTime() + JWT_KEY_PUBLICATION_DELAY_MS + RETIRED_KEY_RETENTION_MS);
  // Retired less than the delay ago: its `until` is still more than the retention time away.
  const mayStillSign = (key: RetiredJwtKey) => key.until.getTime() > now.getTime() + RETIRED_KEY_RETENTION_MS;
  const kept = keys
    .filter((key) => key.until.getTime() > now.getTime() && key.jwk.kid !== outgoing.kid)
    .map((key) => (mayStillSign(key) && key.until.getTime() < until.getTime() ? { jwk: key.jwk, until } : key))
    .sort((a, b) => a.until.getTime() - b.until.getTime())
    .slice(-(MAX_RETIRED_KEYS - 1));
  const next = [...kept, { jwk: outgoing, until }];
  return `${JSON.stringify({ keys: next.map((key) => ({ jwk: key.jwk, until: key.until.toISOString() })) }, null, 2)}\n`;
}
