// Gateway config errors that say how to fix them: the public and admin listeners on one address are refused when
// the config loads (not at bind, with EADDRINUSE), and an unknown key gets the sidecar config's "did you mean …?".
import { describe, expect, it } from 'vitest';
import { MeshauthError } from '../../../src/errors/index.js';
import { gatewayConfigFromObject } from '../../../src/gateway/index.js';

const base = () => ({
  trustDomain: 'example.org',
  ca: { url: 'https://meshauth-ca.meshauth:8443', bundle: 'bundle.pem', token: 'token' },
  tls: { cert: 'gateway.crt', key: 'gateway.key' },
  apiIssuers: [{ issuer: 'https://login.example.com', audiences: ['shop-api'], algorithms: ['RS256'] }],
  routes: [
    {
      name: 'web',
      match: { host: 'shop.example.com', pathPrefix: '/' },
      to: { address: 'web.shop:15006', ids: ['spiffe://example.org/ns/shop/sa/web'] },
      login: 'required',
    },
  ] as Record<string, unknown>[],
});

function refusal(document: unknown): MeshauthError {
  try {
    gatewayConfigFromObject(document, 'gateway.yaml');
  } catch (e) {
    if (e instanceof MeshauthError) return e;
    throw e;
  }
  throw new Error('accepted');
}

describe('gateway config: listeners apart', () => {
  const clashes: [string, Record<string, unknown>, string][] = [
    [
      'fail/listen equal to admin.listen',
      { listen: '127.0.0.1:15021', admin: { listen: '127.0.0.1:15021' } },
      'gateway.yaml: admin.listen: expected an address of its own, not the one of listen (127.0.0.1:15021): two listeners cannot bind one port',
    ],
    [
      'fail/the default wildcard listen and admin.listen on its port',
      { admin: { listen: '127.0.0.1:8443' } },
      'gateway.yaml: admin.listen: expected an address of its own, not the one of listen (0.0.0.0:8443): two listeners cannot bind one port',
    ],
    [
      'fail/the same place spelled twice (localhost and IPv4-mapped 127.0.0.1)',
      { listen: 'localhost:9000', admin: { listen: '[::ffff:127.0.0.1]:9000' } },
      'gateway.yaml: admin.listen: expected an address of its own, not the one of listen (localhost:9000): two listeners cannot bind one port',
    ],
  ];
  for (const [name, listeners, message] of clashes) {
    it(name, () => {
      const error = refusal({ ...base(), ...listeners });
      expect(error.code).toBe('MESHAUTH_ERR_CONFIG_INVALID');
      expect(error.message).toBe(message);
      expect(error.detail).toEqual({ file: 'gateway.yaml', key: 'admin.listen' });
    });
  }

  it('ok/other ports, other hosts and port 0 (any free port) are accepted', () => {
    for (const listeners of [
      { listen: '127.0.0.1:8443', admin: { listen: '127.0.0.1:15021' } },
      { listen: '127.0.0.2:9000', admin: { listen: '127.0.0.1:9000' } },
      { listen: '127.0.0.1:0', admin: { listen: '127.0.0.1:0' } },
    ]) {
      expect(gatewayConfigFromObject({ ...base(), ...listeners }, 'gateway.yaml').listen.host).toBe(
        listeners.listen.split(':')[0],
      );
    }
  });
});

describe('gateway config: unknown keys', () => {
  const cases: [string, (d: ReturnType<typeof base>) => unknown, string][] = [
    [
      'fail/pathprefix for pathPrefix',
      (d) => ({ ...d, routes: [{ ...d.routes[0], match: { host: 'shop.example.com', pathprefix: '/api/' } }] }),
      'gateway.yaml: routes[0].match.pathprefix (did you mean pathPrefix?): unknown key; allowed here: host, pathPrefix (see docs/gateway.md for the allowed keys)',
    ],
    [
      'fail/a top-level typo',
      (d) => ({ ...d, drainTimout: '5s' }),
      'gateway.yaml: drainTimout (did you mean drainTimeout?): unknown key; allowed here: ',
    ],
    [
      'fail/a key inside a list item',
      (d) => ({ ...d, apiIssuers: [{ ...d.apiIssuers[0], audience: ['x'] }] }),
      'gateway.yaml: apiIssuers[0].audience (did you mean audiences?): unknown key; allowed here: issuer, audiences,',
    ],
    [
      'fail/nothing close: no suggestion, the allowed keys still listed',
      (d) => ({ ...d, admin: { listen: '127.0.0.1:15021', port: 1 } }),
      'gateway.yaml: admin.port: unknown key; allowed here: listen (see docs/gateway.md for the allowed keys)',
    ],
  ];
  for (const [name, change, start] of cases) {
    it(name, () => {
      const error = refusal(change(base()));
      expect(error.code).toBe('MESHAUTH_ERR_CONFIG_INVALID');
      expect(error.message.startsWith(start), error.message).toBe(true);
    });
  }

  it('fail/a key under a map entry (a claim condition of a route)', () => {
    const document = base();
    document.routes = [{ ...document.routes[0], claims: { email_verified: { equal: true } } }];
    expect(refusal(document).message).toMatch(
      /^gateway\.yaml: routes\[0\]\.claims\.email_verified\.equal \(did you mean equals\?\): unknown key; allowed here: equals, in, includes, prefix /,
    );
  });
});
