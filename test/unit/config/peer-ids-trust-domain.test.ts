// Every peer ID the sidecar config expects is in its own trust domain: meshauth has no federation, so a route (or
// tunnel, or voucher) expecting another one passed validation and then failed each request with 502
// MESHAUTH_ERR_PEER_IDENTITY. Refused at load as a config error naming the file, the key and what was expected.
import { describe, expect, it } from 'vitest';
import { loadSidecarConfig, sidecarConfigFromObject } from '../../../src/config/index.js';
import { configRefusalMessage } from '../../helpers/config-refusal.js';

const BASE = {
  trustDomain: 'example.org',
  ca: { url: 'https://ca.example:8443', bundle: '/etc/meshauth/bundle.pem', token: '/var/run/token' },
};
const END_USER = { issuers: [{ issuer: 'https://idp.example', audiences: ['api'], algorithms: ['ES256'] }] };
const EXPECTED = 'expected an ID in trust domain example.org (trustDomain), not other.org';

describe('peer IDs outside the trust domain', () => {
  it.each([
    [
      'fail/a route ID',
      { outbound: { routes: { 'orders.shop': { address: 'orders:15006', ids: ['spiffe://other.org/ns/a/sa/b'] } } } },
      `sidecar.yaml: outbound.routes["orders.shop"].ids[0]: ${EXPECTED}`,
    ],
    [
      'fail/a route pattern ending in /sa/*',
      {
        outbound: {
          routes: {
            '*.shop': {
              address: '{host}:15006',
              ids: ['spiffe://example.org/ns/shop/sa/a', 'spiffe://other.org/ns/shop/sa/*'],
            },
          },
        },
      },
      `sidecar.yaml: outbound.routes["*.shop"].ids[1]: ${EXPECTED}`,
    ],
    [
      'fail/a route pattern using {namespace}',
      {
        outbound: {
          routes: { '*.*.svc': { address: '{host}:15006', ids: ['spiffe://other.org/ns/{namespace}/sa/*'] } },
        },
      },
      `sidecar.yaml: outbound.routes["*.*.svc"].ids[0]: ${EXPECTED}`,
    ],
    [
      'fail/a TCP tunnel ID',
      { outbound: { tcp: { '127.0.0.1:5432': { address: 'db:15006', ids: ['spiffe://other.org/ns/db/sa/pg'] } } } },
      `sidecar.yaml: outbound.tcp["127.0.0.1:5432"].ids[0]: ${EXPECTED}`,
    ],
    [
      'fail/an end-user voucher',
      { inbound: { endUser: { ...END_USER, vouchers: ['spiffe://other.org/ns/edge/sa/gateway'] } } },
      `sidecar.yaml: inbound.endUser.vouchers[0]: ${EXPECTED}`,
    ],
    [
      'fail/a peer trusted to forward',
      { inbound: { trustForwardedFrom: ['spiffe://other.org/ns/edge/sa/gateway'] } },
      `sidecar.yaml: inbound.trustForwardedFrom[0]: ${EXPECTED}`,
    ],
  ])('%s is refused at load', (_name, document, expected) => {
    const message = configRefusalMessage(() => sidecarConfigFromObject({ ...BASE, ...document }, 'sidecar.yaml'));
    expect(message).toContain(expected);
    expect(message).toContain('meshauth has no federation');
  });

  it('fail/routes from MESHAUTH_OUTBOUND_ROUTES name the variable', () => {
    const routes = JSON.stringify({
      'orders.shop': { address: 'orders:15006', ids: ['spiffe://other.org/ns/a/sa/b'] },
    });
    const message = configRefusalMessage(() =>
      loadSidecarConfig(undefined, {
        MESHAUTH_TRUST_DOMAIN: 'example.org',
        MESHAUTH_CA_URL: 'https://ca.example:8443',
        MESHAUTH_CA_BUNDLE: '/b.pem',
        MESHAUTH_CA_TOKEN: '/t',
        MESHAUTH_OUTBOUND_ROUTES: routes,
      }),
    );
    expect(message).toContain(
      `environment: outbound.routes["orders.shop"].ids[0] (from MESHAUTH_OUTBOUND_ROUTES): ${EXPECTED}`,
    );
  });

  it('ok/IDs and patterns of the own trust domain load', () => {
    const config = sidecarConfigFromObject(
      {
        ...BASE,
        inbound: { endUser: { ...END_USER, vouchers: ['spiffe://example.org/ns/edge/sa/gateway'] } },
        outbound: {
          routes: {
            'orders.shop': { address: 'orders:15006', ids: ['spiffe://example.org/ns/shop/sa/orders'] },
            '*.*.svc': { address: '{host}:15006', ids: ['spiffe://example.org/ns/{namespace}/sa/*'] },
          },
          tcp: { '127.0.0.1:5432': { address: 'db:15006', ids: ['spiffe://example.org/ns/db/sa/pg'] } },
        },
      },
      'sidecar.yaml',
    );
    expect(config.outbound.routes.get('orders.shop')?.ids.map(String)).toEqual([
      'spiffe://example.org/ns/shop/sa/orders',
    ]);
    expect(config.outbound.routes.get('*.*.svc')?.idPatterns).toEqual(['spiffe://example.org/ns/{namespace}/sa/*']);
  });

  it('ok/inbound.trustForwardedFrom defaults to the end-user vouchers (the gateway), else nobody', () => {
    const gateway = 'spiffe://example.org/ns/edge/sa/gateway';
    const trusted = (inbound: Record<string, unknown>) => [
      ...sidecarConfigFromObject({ ...BASE, inbound }, 'sidecar.yaml').inbound.trustForwardedFrom,
    ];
    expect(trusted({ endUser: { ...END_USER, vouchers: [gateway] } })).toEqual([gateway]);
    expect(trusted({})).toEqual([]);
    expect(trusted({ endUser: { ...END_USER, vouchers: [gateway] }, trustForwardedFrom: [] })).toEqual([]);
  });

  it('ok/an invalid trustDomain is reported alone, not once more per ID', () => {
    const message = configRefusalMessage(() =>
      sidecarConfigFromObject(
        {
          ...BASE,
          trustDomain: 'Example.ORG',
          outbound: { routes: { 'a.b': { address: 'a:1', ids: ['spiffe://example.org/ns/a/sa/b'] } } },
        },
        'sidecar.yaml',
      ),
    );
    expect(message).toMatch(/^sidecar\.yaml: trustDomain: expected a trust domain name/);
    expect(message).not.toContain('ids[0]');
  });
});
