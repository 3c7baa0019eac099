import { describe, expect, it } from 'vitest';
import { gatewayConfigFromObject } from '../../../src/gateway/index.js';

const base = () => ({
  trustDomain: 'example.org',
  ca: { url: 'https://meshauth-ca.meshauth:8443', bundle: 'bundle.pem', token: 'token' },
  listen: '0.0.0.0:8443',
  tls: { cert: 'gateway.crt', key: 'gateway.key' },
  session: { keys: ['session-2026-12.key', 'session-2026-11.key'], idleTimeout: '30m', absoluteTimeout: '12h' },
  oidc: {
    issuer: 'https://login.example.com',
    clientId: 'meshauth-gateway',
    clientSecretFile: 'client.secret',
    redirectUri: 'https://shop.example.com/.meshauth/callback',
    scopes: ['openid', 'profile', 'email'],
  },
  apiIssuers: [{ issuer: 'https://login.example.com', audiences: ['shop-api'], algorithms: ['RS256'] }],
  routes: [
    {
      name: 'web',
      match: { host: 'shop.example.com', pathPrefix: '/' },
      to: { address: 'web.shop:15006', ids: ['spiffe://example.org/ns/shop/sa/web'] },
      login: 'required',
    },
  ],
  policy: 'edge-policy.yaml',
  admin: { listen: '127.0.0.1:15021' },
});

function error(document: unknown): string {
  try {
    gatewayConfigFromObject(document, 'gateway.yaml');
  } catch (e) {
    return (e as Error).message;
  }
  return '(accepted)';
}

describe('gateway config', () => {
  it('ok/the documented example is accepted with its defaults', () => {
    const config = gatewayConfigFromObject(base(), 'gateway.yaml');
    expect(config.session.idleTimeoutMs).toBe(1_800_000);
    expect(config.session.absoluteTimeoutMs).toBe(43_200_000);
    expect(config.session.cookieName).toBe('__Host-meshauth');
    expect(config.routes[0]?.login).toBe('required');
    expect(config.oidc?.insecureLoopback).toBe(false);
    expect(config.limits.maxTokenLifetimeSeconds).toBe(86_400);
  });

  it('ok/limits.maxTokenLifetime raises the ceiling on an API token exp (an issuer of week-long machine tokens)', () => {
    const config = gatewayConfigFromObject({ ...base(), limits: { maxTokenLifetime: '7d' } }, 'gateway.yaml');
    expect(config.limits.maxTokenLifetimeSeconds).toBe(604_800);
    expect(error({ ...base(), limits: { maxTokenLifetime: 'a week' } })).toMatch(/limits\.maxTokenLifetime/);
  });

  it('ok/an http issuer on loopback is accepted (development)', () => {
    const doc = base();
    doc.oidc.issuer = 'http://127.0.0.1:9000';
    expect(gatewayConfigFromObject(doc, 'gateway.yaml').oidc?.insecureLoopback).toBe(true);
  });

  const cases: [string, (d: ReturnType<typeof base>) => unknown, RegExp][] = [
    [
      'fail/unknown key',
      (d) => ({ ...d, sesion: {} }),
      /gateway\.yaml: sesion \(did you mean session\?\): unknown key/,
    ],
    [
      'fail/http issuer off loopback',
      (d) => ({ ...d, oidc: { ...d.oidc, issuer: 'http://login.example.com' } }),
      /gateway\.yaml: oidc\.issuer: an http:\/\/ issuer is refused/,
    ],
    [
      'fail/redirect not the callback path',
      (d) => ({ ...d, oidc: { ...d.oidc, redirectUri: 'https://shop.example.com/cb' } }),
      /oidc\.redirectUri: expected https:\/\/<public host>\/\.meshauth\/callback/,
    ],
    [
      'fail/scopes without openid',
      (d) => ({ ...d, oidc: { ...d.oidc, scopes: ['profile'] } }),
      /oidc\.scopes: must include openid/,
    ],
    [
      'fail/passport route with two IDs',
      (d) => ({
        ...d,
        routes: [
          { ...d.routes[0], to: { address: 'web:1', ids: ['spiffe://example.org/a', 'spiffe://example.org/b'] } },
        ],
      }),
      /routes\[0\]\.to\.ids: .*exactly one SPIFFE ID/,
    ],
    [
      'fail/route ID of another trust domain',
      (d) => ({ ...d, routes: [{ ...d.routes[0], to: { address: 'web:1', ids: ['spiffe://other.org/web'] } }] }),
      /routes\[0\]\.to\.ids: .* is not in trust domain example\.org/,
    ],
    [
      'fail/route name not a DNS label',
      (d) => ({ ...d, routes: [{ ...d.routes[0], name: 'Web_1' }] }),
      /routes\[0\]\.name: expected a lower-case DNS label/,
    ],
    [
      'fail/duplicate route names',
      (d) => ({ ...d, routes: [d.routes[0], d.routes[0]] }),
      /routes\[1\]\.name: route name "web" is used twice/,
    ],
    [
      'fail/requirements on a login none route',
      (d) => ({ ...d, routes: [{ ...d.routes[0], login: 'none', scopes: ['a'] }] }),
      /routes\[0\]: scopes, roles, groups and claims need an end user/,
    ],
    ['fail/bad listen address', (d) => ({ ...d, listen: '8443' }), /gateway\.yaml: listen: expected host:port/],
    [
      'fail/session cookie without __Host- prefix',
      (d) => ({ ...d, session: { ...d.session, cookieName: 'sid' } }),
      /session\.cookieName: expected a name starting with __Host-/,
    ],
    [
      'fail/claim condition without an operator',
      (d) => ({ ...d, routes: [{ ...d.routes[0], claims: { tenant: {} } }] }),
      /routes\[0\]\.claims\.tenant: expected at least one of equals, in, includes, prefix/,
    ],
    [
      'fail/oidc without session keys',
      (d) => ({ ...d, session: undefined }),
      /gateway\.yaml: session: oidc needs session\.keys/,
    ],
    ['fail/missing tls', (d) => ({ ...d, tls: undefined }), /gateway\.yaml: tls: /],
  ];
  for (const [name, mutate, expected] of cases) {
    it(name, () => {
      expect(error(mutate(base()))).toMatch(expected);
    });
  }
});
