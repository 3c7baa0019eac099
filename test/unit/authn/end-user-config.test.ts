// Start-up rejection of unsafe end-user settings (RFC 8725 §3.1: allow-list, no none, no HMAC) and the URL
// policy for discovery/JWKS (https, or http to loopback only).
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import {
  checkFetchableUrl,
  discoveryUrl,
  type EndUserConfig,
  type EndUserIssuerConfig,
  EndUserVerifier,
  resolveEndUserTunables,
  validateEndUserConfig,
} from '../../../src/authn/index.js';
import { isMeshauthError } from '../../../src/errors/index.js';

const ISSUER: EndUserIssuerConfig = {
  issuer: 'https://idp.example.com',
  audiences: ['shop'],
  jwksUri: 'https://idp.example.com/jwks',
  algorithms: ['RS256', 'ES256'],
};

type Overrides = { [K in keyof EndUserIssuerConfig]?: EndUserIssuerConfig[K] | undefined };

function config(overrides: Overrides = {}, claims: string[] = ['scope']): EndUserConfig {
  // An `undefined` override removes the key (e.g. no jwksUri → discovery).
  const merged = Object.fromEntries(
    Object.entries({ ...ISSUER, ...overrides }).filter(([, value]) => value !== undefined),
  ) as unknown as EndUserIssuerConfig;
  return { required: false, issuers: [merged], vouchers: [], claims };
}

function configError(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (isMeshauthError(error, 'MESHAUTH_ERR_CONFIG_INVALID')) return error.message;
    throw error;
  }
  return undefined;
}

function fileError(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (isMeshauthError(error, 'MESHAUTH_ERR_FILE_UNREADABLE')) return error.message;
    throw error;
  }
  return undefined;
}

describe('validateEndUserConfig', () => {
  const OK: [string, EndUserConfig][] = [
    ['ok/SPEC §7 example', config()],
    ['ok/discovery from an https issuer', config({ jwksUri: undefined })],
    ['ok/http to 127.0.0.1', config({ issuer: 'http://127.0.0.1:9000', jwksUri: undefined })],
    ['ok/http to localhost', config({ jwksUri: 'http://localhost:9000/jwks' })],
    ['ok/http to ::1', config({ jwksUri: 'http://[::1]:9000/jwks' })],
    ['ok/typ at+jwt', config({ typ: 'at+jwt' })],
    ['ok/EdDSA and PS256', config({ algorithms: ['EdDSA', 'PS256'] })],
    ['ok/a local JWKS file', config({ jwksUri: 'file:///etc/meshauth/jwks/jwks.json' })],
    ['ok/a local JWKS file, percent-encoded space', config({ jwksUri: 'file:///etc/mesh%20auth/jwks.json' })],
    ['ok/caFile for an https JWKS', config({ caFile: '/etc/meshauth/idp-ca.pem' })],
    ['ok/caFile for https discovery', config({ jwksUri: undefined, caFile: '/etc/meshauth/idp-ca.pem' })],
  ];
  for (const [name, value] of OK) {
    it(name, () => {
      expect(configError(() => validateEndUserConfig(value))).toBeUndefined();
    });
  }

  const FAIL: [string, EndUserConfig, RegExp][] = [
    ['fail/HS256 in the allow-list', config({ algorithms: ['ES256', 'HS256'] }), /HS256/],
    ['fail/none in the allow-list', config({ algorithms: ['none'] }), /none/],
    ['fail/unknown algorithm', config({ algorithms: ['ES256K'] }), /ES256K/],
    ['fail/empty allow-list', config({ algorithms: [] }), /algorithms/],
    ['fail/no audience', config({ audiences: [] }), /audiences/],
    ['fail/plain http JWKS to another host', config({ jwksUri: 'http://idp.example.com/jwks' }), /jwksUri/],
    [
      'fail/plain http issuer for discovery',
      config({ issuer: 'http://idp.example.com', jwksUri: undefined }),
      /issuer/,
    ],
    ['fail/http to a look-alike host', config({ jwksUri: 'http://127.0.0.1.evil.example/jwks' }), /jwksUri/],
    ['fail/file: JWKS on another host', config({ jwksUri: 'file://fileserver/jwks.json' }), /jwksUri.*host/],
    ['fail/file: JWKS with a query', config({ jwksUri: 'file:///etc/jwks.json?v=2' }), /jwksUri.*query/],
    ['fail/file: JWKS with an encoded slash', config({ jwksUri: 'file:///etc/a%2Fb.json' }), /jwksUri/],
    ['fail/file: issuer (discovery needs a URL)', config({ issuer: 'file:///etc', jwksUri: undefined }), /issuer/],
    ['fail/caFile with a file JWKS', config({ jwksUri: 'file:///etc/jwks.json', caFile: '/ca.pem' }), /caFile/],
    ['fail/caFile with http to loopback', config({ jwksUri: 'http://127.0.0.1:9/jwks', caFile: '/ca.pem' }), /caFile/],
    ['fail/empty caFile', config({ caFile: '' }), /caFile/],
    ['fail/JWKS URL with credentials', config({ jwksUri: 'https://u:p@idp.example.com/jwks' }), /credentials/],
    ['fail/issuer listed twice', { ...config(), issuers: [ISSUER, ISSUER] }, /twice/],
    ['fail/bad claim name', config({}, ['scope', 'a b']), /claim/],
  ];
  for (const [name, value, message] of FAIL) {
    it(name, () => {
      expect(configError(() => validateEndUserConfig(value))).toMatch(message);
    });
  }

  it('fail/the verifier refuses an unreadable caFile at construction, naming it', () => {
    expect(fileError(() => new EndUserVerifier({ config: config({ caFile: '/nonexistent/idp-ca.pem' }) }))).toBe(
      'inbound.endUser.issuers[0].caFile: CA file /nonexistent/idp-ca.pem: cannot be read (ENOENT)',
    );
  });

  // A directory printed a bare EISDIR and a FIFO at the path blocked the start: bounded, regular files only.
  it('fail/a directory as caFile → "CA file <path>: not a regular file", naming the key', () => {
    const directory = tmpdir();
    expect(fileError(() => new EndUserVerifier({ config: config({ caFile: directory }) }))).toBe(
      `inbound.endUser.issuers[0].caFile: CA file ${directory}: not a regular file`,
    );
  });

  it("fail/a directory as a gateway apiIssuers' caFile names the file and apiIssuers[i].caFile", () => {
    const directory = tmpdir();
    const origin = { source: 'gateway.yaml', issuersKey: 'apiIssuers' };
    expect(fileError(() => new EndUserVerifier({ config: config({ caFile: directory }), origin }))).toBe(
      `gateway.yaml: apiIssuers[0].caFile: CA file ${directory}: not a regular file`,
    );
  });

  it('fail/the verifier refuses HS256 at construction', () => {
    expect(configError(() => new EndUserVerifier({ config: config({ algorithms: ['HS256'] }) }))).toMatch(/HS256/);
  });
});

describe('resolveEndUserTunables', () => {
  it('ok/defaults', () => {
    expect(resolveEndUserTunables()).toMatchObject({
      clockSkewSeconds: 30,
      maxTokenBytes: 16_384,
      jwksFetchTimeoutMs: 3_000,
      jwksMaxResponseBytes: 262_144,
    });
  });
  it('fail/clock skew above 60 s', () => {
    expect(configError(() => resolveEndUserTunables({ clockSkewSeconds: 61 }))).toMatch(/skew/);
  });
  it('fail/negative timeout', () => {
    expect(configError(() => resolveEndUserTunables({ jwksFetchTimeoutMs: -1 }))).toMatch(/jwksFetchTimeoutMs/);
  });
});

describe('URL helpers', () => {
  it('ok/discoveryUrl strips a trailing slash (OIDC Discovery §4)', () => {
    expect(discoveryUrl('https://a.example/realm/')).toBe('https://a.example/realm/.well-known/openid-configuration');
  });
  it('fail/checkFetchableUrl rejects non-URLs and 0.0.0.0', () => {
    expect(checkFetchableUrl('not a url')).toBeDefined();
    expect(checkFetchableUrl('http://0.0.0.0:1/jwks')).toBeDefined();
    expect(checkFetchableUrl('http://127.1.2.3:1/jwks')).toBeUndefined();
  });
});
