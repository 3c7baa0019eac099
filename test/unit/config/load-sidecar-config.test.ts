// loadSidecarConfig: strict validation naming file + key + expectation, defaults, env overrides, freeze.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  loadSidecarConfig,
  SIDECAR_ENV,
  sidecarConfigFromObject,
  unknownMeshauthVariables,
} from '../../../src/config/index.js';
import { isMeshauthError } from '../../../src/errors/index.js';

const dir = mkdtempSync(join(tmpdir(), 'meshauth-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MINIMAL = `trustDomain: example.org
ca: { url: "https://ca.example:8443", bundle: /etc/meshauth/bundle.pem, token: /var/run/token }
`;

const END_USER = 'endUser: { issuers: [ { issuer: "https://idp.example", audiences: [api], algorithms: [ES256] } ] }';

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (isMeshauthError(error, 'MESHAUTH_ERR_CONFIG_INVALID') || isMeshauthError(error, 'MESHAUTH_ERR_FILE_UNREADABLE'))
      return error.message;
    throw error;
  }
  throw new Error('expected a config error');
}

describe('loadSidecarConfig', () => {
  it('ok/minimal file gets the SPEC §7 defaults', () => {
    const config = loadSidecarConfig(write('min.yaml', MINIMAL), {});
    expect(config.trustDomain.name).toBe('example.org');
    expect(config.inbound.listen).toEqual({ host: '0.0.0.0', port: 15006 });
    expect(config.inbound.app).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(config.outbound.listen).toEqual({ host: '127.0.0.1', port: 15001 });
    expect(config.admin.listen).toEqual({ host: '0.0.0.0', port: 15020 });
    expect(config.inbound.tls12).toBe(false);
    expect(config.inbound.appTimeoutMs).toBe(30_000);
    expect(config.drainTimeoutMs).toBe(20_000);
    expect(config.outbound.egress).toEqual([]);
  });

  it('ok/the SPEC §7 example parses, routes and endUser included', () => {
    const config = loadSidecarConfig(
      write(
        'spec.yaml',
        `${MINIMAL}inbound:  { listen: 0.0.0.0:15006, app: 127.0.0.1:8080, policy: /etc/meshauth/policy.yaml,
            endUser: { required: false, issuers: [ { issuer: https://idp.example.com, audiences: [shop], jwksUri: https://idp.example.com/jwks, algorithms: [RS256, ES256] } ],
                       vouchers: [ "spiffe://example.org/ns/edge/sa/gateway" ], claims: [scope, groups] } }
outbound: { listen: 127.0.0.1:15001, routes: { "orders.shop": { address: "orders.shop.svc:80", ids: ["spiffe://example.org/ns/shop/sa/orders"] } }, egress: ["api.example.com", "*.googleapis.com"] }
admin:    { listen: 0.0.0.0:15020 }
drainTimeout: 5s
`,
      ),
      {},
    );
    const route = config.outbound.routes.get('orders.shop');
    expect(route?.address).toEqual({ host: 'orders.shop.svc', port: 80 });
    expect(route?.ids.map(String)).toEqual(['spiffe://example.org/ns/shop/sa/orders']);
    expect(config.inbound.endUser?.issuers[0]?.algorithms).toEqual(['RS256', 'ES256']);
    expect(config.inbound.endUser?.forwardOriginalToken).toBe(false);
    expect(config.inbound.endUser?.maxTokenLifetimeSeconds).toBe(86_400);
    expect(config.inbound.policy).toBe('/etc/meshauth/policy.yaml');
    expect(config.drainTimeoutMs).toBe(5_000);
  });

  it('ok/environment overrides the file', () => {
    const config = loadSidecarConfig(write('env.yaml', `${MINIMAL}inbound: { listen: 0.0.0.0:1 }\n`), {
      MESHAUTH_INBOUND_LISTEN: '127.0.0.1:16006',
      MESHAUTH_INBOUND_TLS12: 'true',
      MESHAUTH_OUTBOUND_EGRESS: 'a.example, *.b.example',
      MESHAUTH_OUTBOUND_ROUTES: '{"x.mesh":{"address":"10.0.0.1:15006"}}',
      MESHAUTH_TRUST_DOMAIN: 'other.org',
      MESHAUTH_DRAIN_TIMEOUT: '1m',
    });
    expect(config.inbound.listen).toEqual({ host: '127.0.0.1', port: 16006 });
    expect(config.inbound.tls12).toBe(true);
    expect(config.outbound.egress).toEqual([
      { host: 'a.example', port: 443 },
      { host: '*.b.example', port: 443 },
    ]);
    expect(config.outbound.routes.get('x.mesh')?.address.port).toBe(15006);
    expect(config.trustDomain.name).toBe('other.org');
    expect(config.drainTimeoutMs).toBe(60_000);
  });

  it('ok/environment alone configures the sidecar', () => {
    const config = loadSidecarConfig(undefined, {
      MESHAUTH_TRUST_DOMAIN: 'example.org',
      MESHAUTH_CA_URL: 'https://ca:8443',
      MESHAUTH_CA_BUNDLE: '/b.pem',
      MESHAUTH_CA_TOKEN: '/t',
    });
    expect(config.source).toBe('environment');
    expect(config.ca.bundle).toBe('/b.pem');
  });

  it('ok/the result is frozen', () => {
    const config = loadSidecarConfig(write('frozen.yaml', MINIMAL), {});
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.inbound)).toBe(true);
    expect(() => (config.outbound.routes as Map<string, unknown>).set('x', {})).toThrow();
  });

  const bad: Array<[string, string, RegExp]> = [
    [
      'fail/unknown top-level key, with the closest allowed one',
      `${MINIMAL}inboud: {}\n`,
      /bad\.yaml: inboud \(did you mean inbound\?\): unknown key; allowed here: trustDomain, ca, inbound, outbound/,
    ],
    [
      'fail/unknown nested key, with the keys allowed at that place',
      `${MINIMAL}inbound: { lisen: 0.0.0.0:1 }\n`,
      /inbound\.lisen \(did you mean listen\?\): unknown key; allowed here: listen, app, .*README: "Configuration reference"/,
    ],
    ['fail/a key differing in case', `${MINIMAL}inbound: { apptimeout: 5s }\n`, /did you mean appTimeout\?/],
    [
      'fail/two letters swapped in a short required key',
      MINIMAL.replace('url:', 'ulr:'),
      /ca\.url: required key is missing[\s\S]*ca\.ulr \(did you mean url\?\): unknown key/,
    ],
    [
      'fail/an unknown key nothing is close to gets no guess',
      `${MINIMAL}inbound: { frobnicate: 1 }\n`,
      /inbound\.frobnicate: unknown key; allowed here/,
    ],
    [
      'fail/an unknown key under a route names the route keys',
      `${MINIMAL}outbound: { routes: { a.mesh: { address: "a:1", idz: [] } } }\n`,
      /idz \(did you mean ids\?\): unknown key; allowed here: address, ids/,
    ],
    [
      'fail/a boolean written as text says what is accepted',
      `${MINIMAL}inbound: { tls12: "yes" }\n`,
      /inbound\.tls12: expected true or false, not the text "yes"$/,
    ],
    ['fail/bad host:port', `${MINIMAL}inbound: { listen: "15006" }\n`, /inbound\.listen: expected host:port/],
    [
      'fail/a port above 65535 is named as the problem',
      `${MINIMAL}inbound: { app: "127.0.0.1:99999" }\n`,
      /inbound\.app: port 99999 is out of range: a port is at most 65535$/,
    ],
    [
      'fail/a wrong shape with a big port is named as the shape',
      `${MINIMAL}inbound: { app: "a:b:99999" }\n`,
      /inbound\.app: expected host:port, e\.g\. 127\.0\.0\.1:8080/,
    ],
    [
      'fail/a number where host:port is expected says so',
      `${MINIMAL}inbound: { listen: 15006 }\n`,
      /inbound\.listen: expected host:port, e\.g\. 127\.0\.0\.1:8080 .*, not a number/,
    ],
    [
      'fail/a number where a duration is expected says so',
      `${MINIMAL}drainTimeout: 20\n`,
      /drainTimeout: expected a positive duration such as 500ms, 30s, 10m or 1h, not a number/,
    ],
    ['fail/a list where a string is expected', `${MINIMAL}inbound: { app: [a] }\n`, /inbound\.app: .*, not a list/],
    [
      'fail/outbound not on loopback',
      `${MINIMAL}outbound: { listen: 0.0.0.0:15001 }\n`,
      /outbound\.listen: .*loopback/,
    ],
    [
      'fail/route ID is not a SPIFFE ID',
      `${MINIMAL}outbound: { routes: { a.mesh: { address: "a:1", ids: ["https://x"] } } }\n`,
      /outbound\.routes\["a\.mesh"\]\.ids\[0\]: expected a SPIFFE ID/,
    ],
    [
      'fail/missing trustDomain',
      'ca: { url: "https://x", bundle: b, token: t }\n',
      /trustDomain: required key is missing/,
    ],
    ['fail/bad trust domain', MINIMAL.replace('example.org', 'Example.ORG'), /trustDomain: expected a trust domain/],
    [
      'fail/endUser issuer without algorithms',
      `${MINIMAL}inbound: { endUser: { issuers: [ { issuer: "https://idp", audiences: [a] } ] } }\n`,
      /inbound\.endUser\.issuers\[0\]\.algorithms: required key is missing/,
    ],
    ['fail/not YAML', 'trustDomain: [unclosed\n', /bad\.yaml:.* not valid YAML/],
    [
      'fail/external without endUser',
      `${MINIMAL}inbound: { external: { listen: 0.0.0.0:8443, cert: /tls/a.crt, key: /tls/a.key } }\n`,
      /bad\.yaml: inbound\.external: requires inbound\.endUser/,
    ],
    [
      'fail/external without key',
      `${MINIMAL}inbound: { ${END_USER}, external: { listen: 0.0.0.0:8443, cert: /tls/a.crt } }\n`,
      /inbound\.external\.key: required key is missing/,
    ],
    [
      'fail/external listen is not host:port',
      `${MINIMAL}inbound: { ${END_USER}, external: { listen: "8443", cert: /a, key: /b } }\n`,
      /inbound\.external\.listen: expected host:port/,
    ],
    [
      'fail/endUser.maxTokenLifetime not a duration names the key and the form expected',
      `${MINIMAL}inbound: { endUser: { issuers: [ { issuer: https://idp.example.com, audiences: [shop], algorithms: [ES256] } ], maxTokenLifetime: a-day } }\n`,
      /bad\.yaml: inbound\.endUser\.maxTokenLifetime: expected a positive duration such as 1h or 24h/,
    ],
    [
      'fail/external unknown key',
      `${MINIMAL}inbound: { ${END_USER}, external: { listen: 0.0.0.0:1, cert: /a, key: /b, ca: /c } }\n`,
      /inbound\.external\.ca: unknown key/,
    ],
  ];
  it.each(bad)('%s', (_name, text, expected) => {
    expect(errorOf(() => loadSidecarConfig(write('bad.yaml', text), {}))).toMatch(expected);
  });

  it('ok/inbound.external with endUser: listen parsed, files kept as paths (read at sidecar start)', () => {
    const config = loadSidecarConfig(
      write(
        'external.yaml',
        `${MINIMAL}inbound: { ${END_USER}, external: { listen: "0.0.0.0:8443", cert: /tls/api.crt, key: /tls/api.key } }\n`,
      ),
      {},
    );
    expect(config.inbound.external).toEqual({
      listen: { host: '0.0.0.0', port: 8443 },
      cert: '/tls/api.crt',
      key: '/tls/api.key',
    });
    expect(Object.isFrozen(config.inbound.external)).toBe(true);
    expect(loadSidecarConfig(write('no-external.yaml', MINIMAL), {}).inbound.external).toBeUndefined();
  });

  it('fail/MESHAUTH_INBOUND_EXTERNAL without endUser names the key and the variable', () => {
    const message = errorOf(() =>
      loadSidecarConfig(write('env-external.yaml', MINIMAL), {
        MESHAUTH_INBOUND_EXTERNAL: '{"listen":"127.0.0.1:8443","cert":"/a","key":"/b"}',
      }),
    );
    expect(message).toMatch(/inbound\.external \(from MESHAUTH_INBOUND_EXTERNAL\): requires inbound\.endUser/);
  });

  it('fail/a bad environment value names the variable', () => {
    const message = errorOf(() =>
      loadSidecarConfig(write('envbad.yaml', MINIMAL), { MESHAUTH_INBOUND_LISTEN: 'nonsense' }),
    );
    expect(message).toMatch(/inbound\.listen \(from MESHAUTH_INBOUND_LISTEN\): expected host:port/);
  });

  it('fail/missing file is named', () => {
    expect(errorOf(() => loadSidecarConfig(join(dir, 'nope.yaml'), {}))).toMatch(/nope\.yaml: cannot read config file/);
  });

  it('ok/every env binding names a key the schema knows', () => {
    for (const binding of SIDECAR_ENV) {
      expect(binding.name).toMatch(/^MESHAUTH_[A-Z0-9_]+$/);
    }
    // A document setting every key through the env table validates (no binding points at an unknown key).
    const env: Record<string, string> = {
      MESHAUTH_TRUST_DOMAIN: 'example.org',
      MESHAUTH_CA_URL: 'https://ca:1',
      MESHAUTH_CA_BUNDLE: '/b',
      MESHAUTH_CA_TOKEN: '/t',
      MESHAUTH_INBOUND_LISTEN: '127.0.0.1:1',
      MESHAUTH_INBOUND_APP: '127.0.0.1:2',
      MESHAUTH_INBOUND_POLICY: '/p.yaml',
      MESHAUTH_INBOUND_TLS12: 'false',
      MESHAUTH_INBOUND_APP_TIMEOUT: '5s',
      MESHAUTH_INBOUND_END_USER: '{"issuers":[{"issuer":"https://idp","audiences":["a"],"algorithms":["ES256"]}]}',
      MESHAUTH_INBOUND_EXTERNAL: '{"listen":"0.0.0.0:8443","cert":"/tls/api.crt","key":"/tls/api.key"}',
      MESHAUTH_OUTBOUND_LISTEN: '127.0.0.1:3',
      MESHAUTH_OUTBOUND_ROUTES: '{}',
      MESHAUTH_OUTBOUND_EGRESS: 'x.example',
      MESHAUTH_OUTBOUND_TIMEOUT: '9s',
      MESHAUTH_OUTBOUND_HTTP2: 'false',
      MESHAUTH_ADMIN_LISTEN: '127.0.0.1:4',
      MESHAUTH_DRAIN_TIMEOUT: '3s',
      MESHAUTH_INBOUND_LIMITS: '{"maxConnections":10,"handshakeTimeout":"2s"}',
      MESHAUTH_INBOUND_TCP: '{"app":"127.0.0.1:6379"}',
      MESHAUTH_OUTBOUND_DNS: '{"servers":["127.0.0.1:5353"]}',
      MESHAUTH_OUTBOUND_TCP:
        '{"127.0.0.1:5432":{"address":"db.data:15006","ids":["spiffe://example.org/ns/data/sa/db"]}}',
      MESHAUTH_OUTBOUND_LIMITS: '{"maxConnections":64}',
      MESHAUTH_ADMIN_APP_PROBES: '{"app":{"readyz":{"port":8080,"path":"/ready"}}}',
    };
    expect(Object.keys(env).sort()).toEqual(SIDECAR_ENV.map((b) => b.name).sort());
    const config = loadSidecarConfig(undefined, env);
    expect(config.outbound.timeoutMs).toBe(9_000);
    expect(config.inbound.external?.listen).toEqual({ host: '0.0.0.0', port: 8443 });
    expect(config.inbound.limits.maxConnections).toBe(10);
    expect(config.inbound.limits.handshakeTimeoutMs).toBe(2_000);
    expect(config.inbound.limits.maxConcurrentStreams).toBe(100);
    expect(config.inbound.tcp?.app).toEqual({ host: '127.0.0.1', port: 6379 });
    expect(config.outbound.dns.servers).toEqual([{ host: '127.0.0.1', port: 5353 }]);
    expect(config.outbound.tcp.get('127.0.0.1:5432')?.address).toEqual({ host: 'db.data', port: 15006 });
    expect(config.outbound.limits.maxConnections).toBe(64);
    expect(config.admin.appProbes.get('app')?.readyz).toEqual({ port: 8080, path: '/ready' });
  });

  it('ok/MESHAUTH_CONFIG_YAML holds the whole document when no file is given', () => {
    const yaml = 'trustDomain: example.org\nca: { url: "https://ca:1", bundle: /b, token: /t }\n';
    const config = loadSidecarConfig(undefined, { MESHAUTH_CONFIG_YAML: yaml, MESHAUTH_OUTBOUND_TIMEOUT: '7s' });
    expect(config.source).toBe('MESHAUTH_CONFIG_YAML');
    expect(config.trustDomain.name).toBe('example.org');
    expect(config.outbound.timeoutMs).toBe(7_000);
    expect(() => loadSidecarConfig(undefined, { MESHAUTH_CONFIG_YAML: 'a: [' })).toThrow(/MESHAUTH_CONFIG_YAML/);
  });

  it('fail/nothing given at all (a forgotten --config) says so after the missing keys; a variable set leaves it out', () => {
    expect(() => loadSidecarConfig(undefined, {})).toThrow(
      /^environment: trustDomain: required key is missing[\s\S]*\nno --config FILE, no MESHAUTH_CONFIG_YAML and no MESHAUTH_\* setting was given: start it with --config sidecar\.yaml$/,
    );
    let message = '';
    try {
      loadSidecarConfig(undefined, { MESHAUTH_TRUST_DOMAIN: 'example.org' });
    } catch (error) {
      message = String(error);
    }
    expect(message).toContain('environment: ca: required key is missing');
    expect(message).not.toContain('no --config FILE');
  });

  it('ok/sidecarConfigFromObject validates programmatic configs the same way', () => {
    expect(() => sidecarConfigFromObject({ trustDomain: 'example.org' }, 'inline')).toThrow(/inline: ca: required/);
  });
});

describe('unknownMeshauthVariables', () => {
  it('fail/a misspelled MESHAUTH_* variable is reported with the setting it most likely meant', () => {
    expect(
      unknownMeshauthVariables({
        MESHAUTH_INBOUND_APP_TIMOUT: '5s',
        MESHAUTH_SOMETHING_ELSE_ENTIRELY: '1',
        MESHAUTH_CA_URL: 'https://ca:8443',
        MESHAUTH_CONFIG_YAML: 'trustDomain: example.org',
        MESHAUTH_DEBUG: '1',
        MESHAUTH_BENCH_HTTP2: '0',
        PATH: '/usr/bin',
      }),
    ).toEqual([
      { name: 'MESHAUTH_INBOUND_APP_TIMOUT', meant: 'MESHAUTH_INBOUND_APP_TIMEOUT' },
      { name: 'MESHAUTH_SOMETHING_ELSE_ENTIRELY', meant: undefined },
    ]);
  });
});
