// What the two wrappers of oidc-provider share (the demo issuer here, the demo login provider in src/demo): loading
// the optional package without its runtime warning, an ES256 signing key, and access tokens issued as JWTs per
// resource.
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';

/** The resource a token is for when the client names none. */
export const DEMO_RESOURCE = 'urn:meshauth:demo';

/** oidc-provider's Provider class, as the caller types it (the package ships no types). */
export async function loadOidcProvider<ProviderClass>(): Promise<ProviderClass> {
  // A variable specifier keeps tsc from requiring oidc-provider's types and keeps the package optional.
  const specifier = 'oidc-provider';
  const { default: Provider } = (await quietly(() => import(specifier))) as { default: ProviderClass };
  return Provider;
}

export async function newEs256SigningKey(): Promise<JWK> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid: randomBytes(8).toString('base64url'), alg: 'ES256', use: 'sig' };
}

/** The `resourceIndicators` feature: ES256 JWT access tokens for `audience` (or the resource a client names). */
export function jwtAccessTokenResources(audience: string, scopes: readonly string[], ttlSeconds: number): object {
  return {
    enabled: true,
    defaultResource: () => DEMO_RESOURCE,
    useGrantedResource: () => true,
    getResourceServerInfo: (_ctx: unknown, resource: string) => ({
      scope: scopes.join(' '),
      audience: resource === DEMO_RESOURCE ? audience : resource,
      accessTokenFormat: 'jwt',
      accessTokenTTL: ttlSeconds,
      jwt: { sign: { alg: 'ES256' } },
    }),
  };
}

/**
 * oidc-provider warns "Unsupported runtime" on import under Node 20 (it prefers 22+) although it works there; the
 * demo providers are local stand-ins for a real IdP, so that one warning is dropped. Every other warning passes.
 */
async function quietly<T>(load: () => Promise<T>): Promise<T> {
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && args[0].includes('Unsupported runtime')) return;
    warn(...args);
  };
  try {
    return await load();
  } finally {
    console.warn = warn;
  }
}
