// With browser sign-in (oidc) and no API credentials, a route that needs a login is on the redirect URI's host or on
// `*`: the sign-in's cookies are host-only, so a sign-in started on another host can never finish. Such a route is
// refused at start-up with the file, the key, the route and the redirect URI named.
// Found in review: it was accepted silently, and every sign-in on that host ended in 401 `no_login_state`.
import { describe, expect, it } from 'vitest';
import { isMeshauthError } from '../../../src/errors/index.js';
import { signInHost } from '../../../src/gateway/gateway-config.js';
import { gatewayConfigFromObject } from '../../../src/gateway/index.js';

const REDIRECT = 'https://shop.example.com/.meshauth/callback';

function document(
  routes: ReadonlyArray<{ readonly host: string; readonly login: string }>,
  withOidc = true,
  redirectUri = REDIRECT,
  withApi = false,
): Record<string, unknown> {
  return {
    trustDomain: 'example.org',
    ca: { url: 'https://meshauth-ca.meshauth:8443', bundle: 'bundle.pem', token: 'token' },
    tls: { cert: 'gateway.crt', key: 'gateway.key' },
    session: { keys: ['session.key'] },
    ...(withOidc ? { oidc: { issuer: 'https://login.example.com', clientId: 'gateway', redirectUri } } : {}),
    ...(withApi || !withOidc
      ? { apiIssuers: [{ issuer: 'https://login.example.com', audiences: ['shop-api'], algorithms: ['RS256'] }] }
      : {}),
    routes: routes.map((route, i) => ({
      name: `r${i}`,
      match: { host: route.host, pathPrefix: `/p${i}` },
      to: { address: `svc${i}.shop:15006`, ids: [`spiffe://example.org/ns/shop/sa/s${i}`] },
      login: route.login,
    })),
  };
}

function refusal(doc: Record<string, unknown>): { code: string; message: string; detail: unknown } {
  try {
    gatewayConfigFromObject(doc, 'gateway.yaml');
  } catch (error) {
    if (isMeshauthError(error)) return { code: error.code, message: error.message, detail: error.detail };
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('gateway config: routes with a login and the sign-in host', () => {
  it.each(['required', 'optional'])(
    'fail/login: %s on another exact host is refused, naming file, key, route and redirectUri',
    (login) => {
      const refused = refusal(
        document([
          { host: 'shop.example.com', login: 'required' },
          { host: 'app2.example.com', login },
        ]),
      );
      expect(refused.code).toBe('MESHAUTH_ERR_CONFIG_INVALID');
      expect(refused.detail).toEqual({ file: 'gateway.yaml', key: 'routes[1].match.host' });
      expect(refused.message).toBe(
        `gateway.yaml: routes[1].match.host: route "r1" has login: ${login} on host app2.example.com, but browser sign-in finishes at oidc.redirectUri ${REDIRECT} (host shop.example.com) and its cookies are host-only: use host shop.example.com or "*", login: none, apiIssuers or jwtSvids for API clients, or one gateway config per sign-in host`,
      );
    },
  );

  it.each([
    ['the redirect URI host', [{ host: 'shop.example.com', login: 'required' }]],
    ['"*"', [{ host: '*', login: 'required' }]],
    [
      'another host with login: none',
      [
        { host: 'status.example.com', login: 'none' },
        { host: 'shop.example.com', login: 'optional' },
      ],
    ],
  ] as const)('ok/a route on %s is accepted', (_name, routes) => {
    expect(gatewayConfigFromObject(document(routes), 'gateway.yaml').routes).toHaveLength(routes.length);
  });

  it('ok/the redirect URI host is compared as browsers send it: lower case, without port or trailing dot', () => {
    const doc = document(
      [{ host: 'shop.example.com', login: 'required' }],
      true,
      'https://Shop.Example.com.:9443/.meshauth/callback',
    );
    expect(gatewayConfigFromObject(doc, 'gateway.yaml').routes).toHaveLength(1);
  });

  // Found in review: the brackets of an IPv6 literal were kept, request hosts are compared without them, so a "*"
  // route sent a browser on the redirect URI's own host to that host again, for ever.
  it('ok/an IPv6 literal redirect URI host is compared without its brackets, as request hosts are', () => {
    expect(signInHost('https://[::1]:9443/.meshauth/callback')).toBe('::1');
    expect(signInHost('https://[2001:DB8::1]/.meshauth/callback')).toBe('2001:db8::1');
  });

  // Found in review of the first version: it refused an API host with `login: required` beside oidc, which API
  // clients with bearer tokens had used; its browsers are sent to the sign-in host instead.
  it('ok/with apiIssuers a login route on another host is accepted (it serves API clients)', () => {
    const doc = document(
      [
        { host: 'shop.example.com', login: 'required' },
        { host: 'api.example.com', login: 'required' },
      ],
      true,
      REDIRECT,
      true,
    );
    expect(gatewayConfigFromObject(doc, 'gateway.yaml').routes).toHaveLength(2);
  });

  it('ok/without oidc (API clients only) a login route may be on any host', () => {
    const doc = document([{ host: 'api.example.com', login: 'required' }], false);
    delete doc.session;
    expect(gatewayConfigFromObject(doc, 'gateway.yaml').routes[0]?.host).toBe('api.example.com');
  });
});
