// Turns a fetched JWKS into the verification keys we are willing to use:
// symmetric keys, RSA under 2048 bits, keys not meant for signatures, private keys and keys WebCrypto refuses to
// import (e.g. EC points off the curve) are dropped. Each usable key is bound to the algorithms its type allows.
import { importJWK, type JWK } from 'jose';

/** Upper bound on keys kept per issuer; real issuers publish a handful. */
export const MAX_JWKS_KEYS = 64;
const MAX_KID_LENGTH = 256;

export interface UsableKey {
  readonly kid: string | undefined;
  readonly jwk: Readonly<JWK>;
  /** Algorithms this key may verify (one when the JWK names its `alg`, so a key serves one algorithm only). */
  readonly algorithms: ReadonlySet<string>;
}

export interface KeySetResult {
  readonly keys: readonly UsableKey[];
  /** Why each dropped key was dropped (bounded strings, for the log line). */
  readonly rejected: readonly string[];
}

function algorithmsFor(jwk: JWK): string[] {
  switch (jwk.kty) {
    case 'RSA':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'EC':
      if (jwk.crv === 'P-256') return ['ES256'];
      if (jwk.crv === 'P-384') return ['ES384'];
      if (jwk.crv === 'P-521') return ['ES512'];
      return [];
    case 'OKP':
      return jwk.crv === 'Ed25519' ? ['EdDSA', 'Ed25519'] : [];
    default:
      return [];
  }
}

function rsaModulusBits(n: unknown): number {
  if (typeof n !== 'string') return 0;
  const bytes = Buffer.from(n, 'base64url');
  let i = 0;
  while (i < bytes.length && bytes[i] === 0) i++;
  if (i === bytes.length) return 0;
  return (bytes.length - i - 1) * 8 + Math.floor(Math.log2(bytes[i] as number)) + 1;
}

function whyUnusable(jwk: JWK): string | undefined {
  if (typeof jwk.kty !== 'string') return 'no_kty';
  if (jwk.kty === 'oct') return 'symmetric';
  if (jwk.use !== undefined && jwk.use !== 'sig') return 'use_not_sig';
  if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) return 'key_ops';
  if (jwk.d !== undefined || jwk.p !== undefined) return 'private_key';
  if (jwk.kid !== undefined && (typeof jwk.kid !== 'string' || jwk.kid.length > MAX_KID_LENGTH)) return 'bad_kid';
  if (jwk.kty === 'RSA' && rsaModulusBits(jwk.n) < 2048) return 'rsa_too_small';
  const algorithms = algorithmsFor(jwk);
  if (algorithms.length === 0) return 'unsupported_type';
  if (jwk.alg !== undefined && !algorithms.includes(jwk.alg)) return 'alg_mismatch';
  return undefined;
}

/** Filters a parsed JWKS document; never throws on bad members, only on a document that is not a JWKS. */
export async function usableKeys(document: unknown): Promise<KeySetResult> {
  if (typeof document !== 'object' || document === null || !Array.isArray((document as { keys?: unknown }).keys)) {
    throw new TypeError('JWKS document has no "keys" array');
  }
  const members = (document as { keys: unknown[] }).keys;
  const keys: UsableKey[] = [];
  const rejected: string[] = [];
  for (const member of members.slice(0, MAX_JWKS_KEYS)) {
    if (typeof member !== 'object' || member === null || Array.isArray(member)) {
      rejected.push('not_an_object');
      continue;
    }
    const jwk = member as JWK;
    const why = whyUnusable(jwk);
    if (why !== undefined) {
      rejected.push(why);
      continue;
    }
    const algorithms = jwk.alg === undefined ? algorithmsFor(jwk) : [jwk.alg];
    try {
      // Importing validates the key material (EC point on the curve) before we rely on it.
      await importJWK(jwk, algorithms[0]);
    } catch {
      rejected.push('import_failed');
      continue;
    }
    keys.push({ kid: jwk.kid, jwk: Object.freeze({ ...jwk }), algorithms: new Set(algorithms) });
  }
  if (members.length > MAX_JWKS_KEYS) rejected.push('too_many_keys');
  return { keys, rejected };
}

/** Imported keys per key-set entry and algorithm: a storm of tokens verifies thousands of times with one key. */
const imported = new WeakMap<UsableKey, Map<string, Promise<CryptoKey>>>();

/** The CryptoKey of a usable key for `alg`, imported once per key object (a failed import is tried again). */
export function importedKey(key: UsableKey, alg: string): Promise<CryptoKey> {
  let byAlg = imported.get(key);
  if (byAlg === undefined) {
    byAlg = new Map();
    imported.set(key, byAlg);
  }
  let promise = byAlg.get(alg);
  if (promise === undefined) {
    const forKey = byAlg;
    promise = importJWK(key.jwk, alg).then((k) => k as CryptoKey);
    promise.catch(() => forKey.delete(alg));
    forKey.set(alg, promise);
  }
  return promise;
}
