// End-user signing keys for JWKS tests: ES256 key pairs with a kid, the JWKS document that publishes them (as text,
// or as a file for a `file://` jwksUri), and tokens signed by them for a given issuer and audience; and the reason a
// verifier refused a token.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { isMeshauthError } from '../../src/errors/index.js';

export interface SigningKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: Record<string, unknown>;
}

export async function signingKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

/** The JSON text of a JWKS publishing `keys`. */
export function jwksText(...keys: readonly SigningKey[]): string {
  return JSON.stringify({ keys: keys.map((k) => k.publicJwk) });
}

export interface JwksFile {
  /** The `file://` URL of the JWKS (an issuer's `jwksUri`). */
  readonly uri: string;
  /** Removes the file's directory. */
  remove(): void;
}

/** `keys`' JWKS as `jwks.json` in a new temporary directory named from `prefix`. */
export function jwksFile(prefix: string, ...keys: readonly SigningKey[]): JwksFile {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  writeFileSync(join(dir, 'jwks.json'), jwksText(...keys));
  return { uri: `file://${join(dir, 'jwks.json')}`, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A token of `key` for `issuer`/`audience`, valid for `ttlSeconds`. */
export function endUserToken(
  key: SigningKey,
  issuer: string,
  audience: string,
  sub = 'alice',
  ttlSeconds = 600,
): Promise<string> {
  return signed(key, { scope: 'orders:read' }, issuer, audience, sub, ttlSeconds);
}

/** alice's token of `key` for `issuer`/`audience` with `claims` (and no others), valid for 10 minutes. */
export function endUserTokenWith(
  key: SigningKey,
  issuer: string,
  audience: string,
  claims: Record<string, unknown>,
): Promise<string> {
  return signed(key, claims, issuer, audience, 'alice', 600);
}

function signed(
  key: SigningKey,
  claims: Record<string, unknown>,
  issuer: string,
  audience: string,
  sub: string,
  ttlSeconds: number,
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'JWT' })
    .setIssuer(issuer)
    .setAudience(audience)
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(`${ttlSeconds}s`)
    .sign(key.privateKey);
}

/** The reason `verify(token)` refused it with MESHAUTH_ERR_TOKEN_INVALID, or undefined when it was accepted. */
export async function tokenRejection(
  verifier: { verify(token: string): Promise<unknown> },
  token: string,
): Promise<string | undefined> {
  try {
    await verifier.verify(token);
    return undefined;
  } catch (error) {
    if (isMeshauthError(error, 'MESHAUTH_ERR_TOKEN_INVALID')) return error.reason;
    throw error;
  }
}
