// GatewayConfig: the validated, defaulted and frozen gateway settings. resolveGatewayConfig() fills defaults into
// an already validated file and converts values into their types (HostPort, SpiffeId, milliseconds). It also checks
// what one key alone cannot say (route names unique, a passport route names exactly one ID, an http issuer only on
// loopback). Pure: files named here are read by the gateway at start-up.
import { MAX_CLAIM_BYTES } from '../authn/claim-size.js';
import type { ClaimConditions } from '../authz/policy/match-claims.js';
import { parseDuration } from '../config/duration.js';
import { type HostPort, isLoopbackHost, parseHostPort } from '../config/host-port.js';
import { MeshauthError } from '../errors/index.js';
import { SpiffeId, TrustDomain } from '../identity/index.js';
import type { GatewayFile } from './gateway-schema.js';
import { checkListenersApart } from './listen-clash.js';

export const CALLBACK_PATH = '/.meshauth/callback';
export const LOGOUT_PATH = '/.meshauth/logout';
export const RESERVED_PREFIX = '/.meshauth/';

export const GATEWAY_DEFAULTS = Object.freeze({
  listen: '0.0.0.0:8443',
  adminListen: '127.0.0.1:15021',
  idleTimeout: '30m',
  absoluteTimeout: '12h',
  cookieName: '__Host-meshauth',
  scopes: ['openid'],
  refreshBefore: '60s',
  rolesClaim: 'roles',
  callbackPerMinute: 30,
  maxHeaderBytes: 16 * 1024,
  maxClaimBytes: MAX_CLAIM_BYTES,
  upstreamTimeout: '30s',
  maxTokenLifetime: '24h',
  drainTimeout: '10s',
});

export type LoginMode = 'required' | 'optional' | 'none';

export interface GatewayRoute {
  readonly name: string;
  /** Lower-case host, or `*` for any host. */
  readonly host: string;
  readonly pathPrefix: string;
  readonly address: HostPort;
  readonly ids: readonly SpiffeId[];
  readonly login: LoginMode;
  readonly scopes: readonly string[];
  readonly roles: readonly string[];
  readonly groups: readonly string[];
  readonly claims: ClaimConditions | undefined;
  readonly forwardToken: boolean;
}

export interface OidcSettings {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecretFile: string | undefined;
  readonly redirectUri: string;
  readonly scopes: readonly string[];
  readonly caFile: string | undefined;
  readonly claims: readonly string[];
  readonly rolesClaim: string;
  readonly postLogoutRedirectUri: string | undefined;
  readonly refreshBeforeMs: number;
  readonly idTokenAlgorithm: string | undefined;
  /** True for an http:// issuer on a loopback address (local development; warned about at start). */
  readonly insecureLoopback: boolean;
}

export interface ApiIssuerSettings {
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly algorithms: readonly string[];
  readonly jwksUri?: string;
  readonly caFile?: string;
  readonly typ?: string;
  readonly claims: readonly string[];
}

/**
 * A test for cookie names only the gateway may set or read: its session and sign-in cookies, and the nameless cookie
 * (a browser that stores `Set-Cookie: =__Host-meshauth=x` sends it back as `__Host-meshauth=x`).
 */
export function reservedCookieTest(config: GatewayConfig): (name: string) => boolean {
  const own = config.session.cookieName;
  return (name) => name === '' || name.startsWith(own) || name.startsWith('__Host-meshauth');
}

export interface GatewayConfig {
  readonly source: string;
  readonly trustDomain: TrustDomain;
  readonly ca: { readonly url: string; readonly bundle: string; readonly token: string };
  readonly listen: HostPort;
  readonly tls: { readonly cert: string; readonly key: string };
  readonly session: {
    readonly keys: readonly string[];
    readonly idleTimeoutMs: number;
    readonly absoluteTimeoutMs: number;
    readonly cookieName: string;
  };
  readonly oidc: OidcSettings | undefined;
  readonly apiIssuers: readonly ApiIssuerSettings[];
  readonly jwtSvids: { readonly issuer: string; readonly audiences: readonly string[] } | undefined;
  readonly routes: readonly GatewayRoute[];
  readonly policy: string | undefined;
  readonly admin: { readonly listen: HostPort };
  readonly limits: {
    readonly callbackPerMinute: number;
    readonly maxHeaderBytes: number;
    readonly maxClaimBytes: number;
    readonly upstreamTimeoutMs: number;
    /** An API token whose `exp` lies further ahead (plus the skew) is refused as `lifetime`. */
    readonly maxTokenLifetimeSeconds: number;
  };
  readonly drainTimeoutMs: number;
}

function invalid(source: string, key: string, message: string): never {
  throw new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', `${source}: ${key}: ${message}`, {
    reason: 'config_invalid',
    detail: { file: source, key },
  });
}

export function resolveGatewayConfig(file: GatewayFile, source: string): GatewayConfig {
  const names = new Set<string>();
  const routes = file.routes.map((route, i): GatewayRoute => {
    const key = `routes[${i}]`;
    if (names.has(route.name)) invalid(source, `${key}.name`, `route name "${route.name}" is used twice`);
    names.add(route.name);
    const login = route.login ?? 'required';
    const ids = route.to.ids.map((id) => SpiffeId.parse(id));
    // The passport's link is addressed to one SPIFFE ID (aud): a route that carries end users names exactly one.
    if (login !== 'none' && ids.length !== 1) {
      invalid(
        source,
        `${key}.to.ids`,
        'a route with login required or optional carries a passport: name exactly one SPIFFE ID',
      );
    }
    for (const id of ids) {
      if (id.trustDomain.name !== file.trustDomain) {
        invalid(source, `${key}.to.ids`, `${id.toString()} is not in trust domain ${file.trustDomain}`);
      }
    }
    const needsUser = route.scopes ?? route.roles ?? route.groups ?? route.claims;
    if (login === 'none' && needsUser !== undefined) {
      invalid(source, key, 'scopes, roles, groups and claims need an end user: use login: required or optional');
    }
    if (route.forwardToken === true && login === 'none') invalid(source, `${key}.forwardToken`, 'needs login');
    return Object.freeze({
      name: route.name,
      host: route.match.host,
      pathPrefix: route.match.pathPrefix ?? '/',
      address: parseHostPort(route.to.address) as HostPort,
      ids: Object.freeze(ids),
      login,
      scopes: Object.freeze([...(route.scopes ?? [])]),
      roles: Object.freeze([...(route.roles ?? [])]),
      groups: Object.freeze([...(route.groups ?? [])]),
      claims: route.claims,
      forwardToken: route.forwardToken ?? false,
    });
  });
  const needsLogin = routes.some((r) => r.login !== 'none');
  if (needsLogin && file.oidc === undefined && (file.apiIssuers ?? []).length === 0 && file.jwtSvids === undefined) {
    invalid(source, 'oidc', 'routes need a login: configure oidc (browsers), apiIssuers and/or jwtSvids (API clients)');
  }
  if (file.oidc !== undefined && file.session === undefined) {
    invalid(source, 'session', 'oidc needs session.keys (the cookie encryption keys)');
  }
  const oidc = file.oidc === undefined ? undefined : resolveOidc(file.oidc, source);
  // With API credentials a login route elsewhere still serves API clients: its browsers are sent to the sign-in host.
  const apiCredentials = (file.apiIssuers ?? []).length > 0 || file.jwtSvids !== undefined;
  if (oidc !== undefined && !apiCredentials) checkSignInHosts(routes, oidc, source);
  const limits = file.limits ?? {};
  const listen = parseHostPort(file.listen ?? GATEWAY_DEFAULTS.listen) as HostPort;
  const adminListen = parseHostPort(file.admin?.listen ?? GATEWAY_DEFAULTS.adminListen) as HostPort;
  checkListenersApart(source, [
    ['listen', listen],
    ['admin.listen', adminListen],
  ]);
  return Object.freeze({
    source,
    trustDomain: TrustDomain.parse(file.trustDomain),
    ca: Object.freeze({ ...file.ca }),
    listen,
    tls: Object.freeze({ ...file.tls }),
    session: Object.freeze({
      keys: Object.freeze([...(file.session?.keys ?? [])]),
      idleTimeoutMs: parseDuration(file.session?.idleTimeout ?? GATEWAY_DEFAULTS.idleTimeout),
      absoluteTimeoutMs: parseDuration(file.session?.absoluteTimeout ?? GATEWAY_DEFAULTS.absoluteTimeout),
      cookieName: file.session?.cookieName ?? GATEWAY_DEFAULTS.cookieName,
    }),
    oidc,
    apiIssuers: Object.freeze(
      (file.apiIssuers ?? []).map((a) =>
        Object.freeze({
          issuer: a.issuer,
          audiences: a.audiences,
          algorithms: a.algorithms,
          ...(a.jwksUri === undefined ? {} : { jwksUri: a.jwksUri }),
          ...(a.caFile === undefined ? {} : { caFile: a.caFile }),
          ...(a.typ === undefined ? {} : { typ: a.typ }),
          claims: Object.freeze([...(a.claims ?? [])]),
        }),
      ),
    ),
    jwtSvids:
      file.jwtSvids === undefined
        ? undefined
        : Object.freeze({
            issuer: file.jwtSvids.issuer ?? file.ca.url,
            audiences: Object.freeze([...file.jwtSvids.audiences]),
          }),
    routes: Object.freeze(routes),
    policy: file.policy,
    admin: Object.freeze({ listen: adminListen }),
    limits: Object.freeze({
      callbackPerMinute: limits.callbackPerMinute ?? GATEWAY_DEFAULTS.callbackPerMinute,
      maxHeaderBytes: limits.maxHeaderBytes ?? GATEWAY_DEFAULTS.maxHeaderBytes,
      maxClaimBytes: limits.maxClaimBytes ?? GATEWAY_DEFAULTS.maxClaimBytes,
      upstreamTimeoutMs: parseDuration(limits.upstreamTimeout ?? GATEWAY_DEFAULTS.upstreamTimeout),
      maxTokenLifetimeSeconds: Math.ceil(
        parseDuration(limits.maxTokenLifetime ?? GATEWAY_DEFAULTS.maxTokenLifetime) / 1000,
      ),
    }),
    drainTimeoutMs: parseDuration(file.drainTimeout ?? GATEWAY_DEFAULTS.drainTimeout),
  });
}

/**
 * The host browser sign-in finishes on: the redirect URI's, lower case, without port, trailing dot or an IPv6
 * literal's brackets (as request hosts are compared: edge-handler.ts hostOf).
 */
export function signInHost(redirectUri: string): string {
  const host = new URL(redirectUri).hostname.toLowerCase();
  return host.startsWith('[') ? host.slice(1, -1) : host.replace(/\.$/, '');
}

/**
 * Browser sign-in finishes at `oidc.redirectUri` only: the pre-login cookie and the session cookie are host-only
 * (`__Host-`), so a sign-in started on another host finds no pre-login cookie at the callback, and a session made
 * there never reaches the other host. Without API credentials a route with a login on another exact host could
 * serve nobody. (A navigation on another host is answered without starting a sign-in: SignInFlow.loginRequired.)
 */
function checkSignInHosts(routes: readonly GatewayRoute[], oidc: OidcSettings, source: string): void {
  const host = signInHost(oidc.redirectUri);
  routes.forEach((route, i) => {
    if (route.login === 'none' || route.host === '*' || route.host === host) return;
    invalid(
      source,
      `routes[${i}].match.host`,
      `route "${route.name}" has login: ${route.login} on host ${route.host}, but browser sign-in finishes at oidc.redirectUri ${oidc.redirectUri} (host ${host}) and its cookies are host-only: use host ${host} or "*", login: none, apiIssuers or jwtSvids for API clients, or one gateway config per sign-in host`,
    );
  });
}

function resolveOidc(oidc: NonNullable<GatewayFile['oidc']>, source: string): OidcSettings {
  const issuer = new URL(oidc.issuer);
  const host = issuer.hostname.replace(/^\[(.*)\]$/, '$1');
  let insecureLoopback = false;
  if (issuer.protocol === 'http:') {
    if (!isLoopbackHost(host)) {
      invalid(
        source,
        'oidc.issuer',
        'an http:// issuer is refused (tokens and codes would cross the network in clear); use https (http only on loopback for local development)',
      );
    }
    insecureLoopback = true;
  } else if (issuer.protocol !== 'https:') {
    invalid(source, 'oidc.issuer', 'expected an https:// URL');
  }
  if (oidc.caFile !== undefined && issuer.protocol !== 'https:')
    invalid(source, 'oidc.caFile', 'only for an https issuer');
  const redirect = new URL(oidc.redirectUri);
  if (redirect.protocol !== 'https:') {
    invalid(source, 'oidc.redirectUri', 'expected https:// (the session cookie is __Host- and Secure)');
  }
  const scopes = oidc.scopes ?? GATEWAY_DEFAULTS.scopes;
  if (!scopes.includes('openid')) invalid(source, 'oidc.scopes', 'must include openid');
  return Object.freeze({
    issuer: oidc.issuer,
    clientId: oidc.clientId,
    clientSecretFile: oidc.clientSecretFile,
    redirectUri: oidc.redirectUri,
    scopes: Object.freeze([...scopes]),
    caFile: oidc.caFile,
    claims: Object.freeze([...(oidc.claims ?? [])]),
    rolesClaim: oidc.rolesClaim ?? GATEWAY_DEFAULTS.rolesClaim,
    postLogoutRedirectUri: oidc.postLogoutRedirectUri,
    refreshBeforeMs: parseDuration(oidc.refreshBefore ?? GATEWAY_DEFAULTS.refreshBefore),
    idTokenAlgorithm: oidc.idTokenAlgorithm,
    insecureLoopback,
  });
}
