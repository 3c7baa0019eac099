// A strict compact JWS for passports only, on node:crypto's synchronous sign/verify. jose's async
// WebCrypto path cost ~265 µs per sign+verify here versus ~100 µs for this one, and a passport is minted and
// verified on every request that carries an end user (the target is < 0.2 ms per hop). End-user tokens from
// outside the mesh still go through jose. Rules: exactly three base64url segments, JSON header with only the
// parameters the caller allows, the algorithm fixed by the key (one key, one algorithm: a token cannot choose).
import { type KeyObject, sign, verify } from 'node:crypto';
import { derFromP1363, p1363FromDer } from '../../pki/index.js';
import { jsonShapeError } from '../json-shape.js';

const SEGMENT = /^[A-Za-z0-9_-]+$/;

export interface JwsAlgorithm {
  readonly alg: 'ES256' | 'EdDSA' | 'RS256';
  readonly hash: 'sha256' | null;
  /** ECDSA: the byte length of r and of s in the JWS signature (r ‖ s, not DER). */
  readonly ecdsaSize?: number;
}

const ES256: JwsAlgorithm = { alg: 'ES256', hash: 'sha256', ecdsaSize: 32 };
const EDDSA: JwsAlgorithm = { alg: 'EdDSA', hash: null };
const RS256: JwsAlgorithm = { alg: 'RS256', hash: 'sha256' };

/**
 * The one JWS algorithm a key may be used with, remembered per key: on Node 24 a key's details are read from OpenSSL
 * on every access, and keys never change.
 */
export function algorithmForKey(key: KeyObject): JwsAlgorithm | undefined {
  let algorithm = algorithms.get(key);
  if (algorithm !== undefined) return algorithm;
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') algorithm = ES256;
  else if (key.asymmetricKeyType === 'ed25519') algorithm = EDDSA;
  else if (key.asymmetricKeyType === 'rsa') algorithm = RS256;
  if (algorithm !== undefined) algorithms.set(key, algorithm);
  return algorithm;
}

const algorithms = new WeakMap<KeyObject, JwsAlgorithm>();

export function signCompact(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  key: KeyObject,
  algorithm: JwsAlgorithm,
): string {
  const input = `${b64(JSON.stringify({ ...header, alg: algorithm.alg }))}.${b64(JSON.stringify(payload))}`;
  const signature = sign(algorithm.hash, Buffer.from(input), key);
  const jwsSignature = algorithm.ecdsaSize === undefined ? signature : p1363FromDer(signature, algorithm.ecdsaSize);
  return `${input}.${jwsSignature.toString('base64url')}`;
}

export interface DecodedJws {
  readonly header: Readonly<Record<string, unknown>>;
  readonly payload: Readonly<Record<string, unknown>>;
  readonly signingInput: string;
  readonly signature: Buffer;
}

/** Parses without verifying; returns undefined for anything that is not a strict compact JWS of JSON objects. */
export function decodeCompact(jws: string, allowedHeader: ReadonlySet<string>): DecodedJws | undefined {
  const parts = jws.split('.');
  if (parts.length !== 3) return undefined;
  const [h, p, s] = parts as [string, string, string];
  if (!SEGMENT.test(h) || !SEGMENT.test(p) || !SEGMENT.test(s)) return undefined;
  const header = parseObject(h);
  const payload = parseObject(p);
  if (header === undefined || payload === undefined) return undefined;
  for (const name of Object.keys(header)) if (!allowedHeader.has(name)) return undefined;
  return { header, payload, signingInput: `${h}.${p}`, signature: Buffer.from(s, 'base64url') };
}

export function verifyCompact(decoded: DecodedJws, key: KeyObject): boolean {
  const algorithm = algorithmForKey(key);
  if (algorithm === undefined || decoded.header.alg !== algorithm.alg) return false;
  const signature =
    algorithm.ecdsaSize === undefined ? decoded.signature : derFromP1363(decoded.signature, algorithm.ecdsaSize);
  if (signature === undefined) return false;
  try {
    return verify(algorithm.hash, Buffer.from(decoded.signingInput), key, signature);
  } catch {
    return false;
  }
}

function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

function parseObject(segment: string): Record<string, unknown> | undefined {
  try {
    const text = Buffer.from(segment, 'base64url').toString('utf8');
    const value: unknown = JSON.parse(text);
    // A name twice (JSON.parse keeps the last, an app reading the passport may keep the first) or deep nesting.
    return typeof value === 'object' && value !== null && !Array.isArray(value) && jsonShapeError(text) === undefined
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
