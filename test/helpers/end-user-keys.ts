// End-user signing keys for JWKS tests: ES256 key pairs with a kid, the JWKS document that publishes them, and
// tokens signed by them for a given issuer and audience; and the reason a verifier refused a token.
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

/** A token of `key` for `issuer`/`audience`, valid for `ttlSeconds`. */
export function endUserToken(
  key: SigningKey,
  issuer: string,
  audience: string,
  sub = 'alice',
  ttlSeconds = 600,
): Promise<string> {
  return new SignJWT({ scope: 'orders:read' })
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
