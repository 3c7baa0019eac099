// What outsiders need to verify the CA's JWT-SVIDs: the issuer URL rules and the discovery document
// served at `/.well-known/openid-configuration`. Pure.
import { MeshauthError } from '../errors/index.js';

export const JWKS_PATH = '/v1/jwks';
export const TOKEN_PATH = '/v1/token';
export const DISCOVERY_PATH = '/.well-known/openid-configuration';

/** `ca serve --issuer-url`: an https URL without query, fragment or credentials (all an OIDC issuer may be). */
export function checkIssuerUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalid(text, 'not a URL');
  }
  if (url.protocol !== 'https:') throw invalid(text, 'must use https');
  if (url.search !== '' || url.hash !== '' || text.includes('?') || text.includes('#')) {
    throw invalid(text, 'must not have a query or fragment');
  }
  if (url.username !== '' || url.password !== '') throw invalid(text, 'must not carry credentials');
  return text;
}

export interface OpenIdConfiguration {
  readonly issuer: string;
  readonly jwks_uri: string;
  readonly token_endpoint: string;
  readonly response_types_supported: readonly string[];
  readonly subject_types_supported: readonly string[];
  readonly id_token_signing_alg_values_supported: readonly string[];
  readonly grant_types_supported: readonly string[];
  readonly token_endpoint_auth_methods_supported: readonly string[];
  readonly claims_supported: readonly string[];
  readonly scopes_supported: readonly string[];
  readonly tls_client_certificate_bound_access_tokens: boolean;
}

/**
 * An OpenID provider's discovery document must carry `issuer`, `jwks_uri`, `response_types_supported`,
 * `subject_types_supported` and `id_token_signing_alg_values_supported` (plain OAuth server metadata needs `issuer` and
 * `response_types_supported`). The CA has no authorization endpoint — no end user ever signs in, the client
 * authenticates by its certificate at the token endpoint — so `authorization_endpoint` is absent, as in the
 * Kubernetes API server's own discovery document, and the response types name what a verifier checks: signed JWTs.
 */
export function openIdConfiguration(issuer: string): OpenIdConfiguration {
  return {
    issuer,
    jwks_uri: endpoint(issuer, JWKS_PATH),
    token_endpoint: endpoint(issuer, TOKEN_PATH),
    response_types_supported: ['id_token'],
    // `sub` is the workload's SPIFFE ID, the same for every audience (the "public" subject type).
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['ES256'],
    grant_types_supported: ['client_credentials'],
    token_endpoint_auth_methods_supported: ['tls_client_auth'],
    claims_supported: ['sub', 'aud', 'exp', 'iat', 'iss', 'jti'],
    scopes_supported: ['openid'],
    // The JWT-SVID carries no `cnf`: it is a plain bearer token for services outside the mesh, bound to no certificate.
    tls_client_certificate_bound_access_tokens: false,
  };
}

/** `issuer` + path, with exactly one slash between them (the issuer itself stays byte-exact: it is the `iss`). */
export function endpoint(issuer: string, path: string): string {
  return `${issuer.replace(/\/+$/, '')}${path}`;
}

function invalid(text: string, why: string): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_USAGE', `--issuer-url ${JSON.stringify(text.slice(0, 200))} ${why}`, {
    reason: 'bad_issuer_url',
  });
}
