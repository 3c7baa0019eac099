// `jwksUri` accepts a local key set (`file:///absolute/path.json`) as well as a URL, but a refused URL only said
// "use https": a user with no identity provider to reach did not learn the alternative. A refused jwksUri URL now
// names the file form; an issuer refused for discovery (a file cannot be discovered) and a refused file URI do not.
import { describe, expect, it } from 'vitest';
import {
  type EndUserConfig,
  type EndUserIssuerConfig,
  JWKS_FILE_HINT,
  validateEndUserConfig,
} from '../../../src/authn/index.js';
import { sidecarConfigFromObject } from '../../../src/config/index.js';
import { gatewayConfigFromObject } from '../../../src/gateway/index.js';
import { configRefusalMessage } from '../../helpers/config-refusal.js';

function config(issuer: Partial<EndUserIssuerConfig>): EndUserConfig {
  const entry = { issuer: 'https://idp.example.com', audiences: ['shop'], algorithms: ['ES256'], ...issuer };
  return { required: false, issuers: [entry as EndUserIssuerConfig], vouchers: [], claims: [] };
}

const GATEWAY = {
  trustDomain: 'example.org',
  ca: { url: 'https://meshauth-ca.meshauth:8443', bundle: 'bundle.pem', token: 'token' },
  listen: '127.0.0.1:8443',
  tls: { cert: 'gateway.crt', key: 'gateway.key' },
  routes: [
    {
      name: 'api',
      match: { host: 'shop.example.com', pathPrefix: '/' },
      to: { address: 'api.shop:15006', ids: ['spiffe://example.org/ns/shop/sa/api'] },
    },
  ],
  admin: { listen: '127.0.0.1:15021' },
};

describe('jwksUri refusals name the file form', () => {
  it('ok/the hint names the accepted form', () => {
    expect(JWKS_FILE_HINT).toContain('file:///absolute/path.json');
  });

  it.each([
    ['fail/plain http to another host', 'http://idp.example.com/jwks'],
    ['fail/an ftp URL', 'ftp://idp.example.com/jwks.json'],
    ['fail/a relative path', './jwks.json'],
  ])('%s: the refusal names the key and the file form', (_name, jwksUri) => {
    const message = configRefusalMessage(() => validateEndUserConfig(config({ jwksUri }), { source: 'sidecar.yaml' }));
    expect(message).toMatch(/^sidecar\.yaml: inbound\.endUser\.issuers\[0\]\.jwksUri: /);
    expect(message).toContain(`; ${JWKS_FILE_HINT}`);
  });

  it.each([
    ['fail/an issuer refused for discovery (a file cannot be discovered)', { issuer: 'http://idp.example.com' }],
    ['fail/a file URI naming a host (already the file form)', { jwksUri: 'file://fileserver/jwks.json' }],
  ])('%s: no file hint', (_name, issuer) => {
    expect(configRefusalMessage(() => validateEndUserConfig(config(issuer)))).not.toContain(JWKS_FILE_HINT);
  });

  it("fail/a gateway apiIssuers' jwksUri that is no URL names the file form", () => {
    const document = {
      ...GATEWAY,
      apiIssuers: [
        { issuer: 'https://idp.example.com', audiences: ['api'], algorithms: ['ES256'], jwksUri: './jwks.json' },
      ],
    };
    let message = '(accepted)';
    try {
      gatewayConfigFromObject(document, 'gateway.yaml');
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('apiIssuers');
    expect(message).toContain(JWKS_FILE_HINT);
  });

  it("fail/a sidecar's inbound.endUser jwksUri that is no URL names the file form", () => {
    const issuer = {
      issuer: 'https://idp.example.com',
      audiences: ['shop'],
      algorithms: ['ES256'],
      jwksUri: './jwks.json',
    };
    const message = configRefusalMessage(() =>
      sidecarConfigFromObject(
        {
          trustDomain: 'example.org',
          ca: { url: 'https://ca.example:8443', bundle: '/b.pem', token: '/t' },
          inbound: { endUser: { issuers: [issuer] } },
        },
        'sidecar.yaml',
      ),
    );
    expect(message).toContain('inbound.endUser.issuers[0].jwksUri');
    expect(message).toContain(JWKS_FILE_HINT);
  });
});
