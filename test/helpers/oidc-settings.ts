// The OIDC settings an OidcRelyingParty is built from, for tests that build one without a gateway config: client
// `meshauth-gateway` without a secret, scope `openid`, no claims kept, and what a parsed config defaults to.
// `insecureLoopback` follows the issuer's scheme (the config allows http:// only on loopback).
import type { OidcSettings } from '../../src/gateway/gateway-config.js';

export function oidcSettings(fields: Pick<OidcSettings, 'issuer'> & Partial<OidcSettings>): OidcSettings {
  return {
    clientId: 'meshauth-gateway',
    clientSecretFile: undefined,
    redirectUri: 'https://127.0.0.1:9443/.meshauth/callback',
    scopes: ['openid'],
    caFile: undefined,
    claims: [],
    rolesClaim: 'roles',
    postLogoutRedirectUri: undefined,
    refreshBeforeMs: 60_000,
    idTokenAlgorithm: undefined,
    insecureLoopback: new URL(fields.issuer).protocol === 'http:',
    ...fields,
  };
}
