// namespaceRefusal: a route whose expected IDs all depend on `{namespace}` cannot serve a host without a namespace
// label (`<service>.<namespace>…`), and the refusal says so. Found in review: such a call went on to DNS and an mTLS
// connection and ended as 502 MESHAUTH_ERR_PEER_IDENTITY, which never named the missing label.
import { describe, expect, it } from 'vitest';
import type { RouteConfig } from '../../../../src/config/index.js';
import { namespaceRefusal } from '../../../../src/sidecar/outbound/namespace-refusal.js';
import { testConfig } from '../../../helpers/sidecar-harness.js';

const NS_IDS = ['spiffe://example.org/ns/{namespace}/sa/*'];

const config = testConfig({
  appPort: 1,
  routes: {
    '*': { address: '{host}:15006', ids: NS_IDS },
    '*.*': { address: '10.0.0.5:15006', ids: ['spiffe://example.org/ns/{namespace}/sa/orders'] },
    '*.mixed': { address: '{host}:15006', ids: [...NS_IDS, 'spiffe://example.org/ns/shop/sa/orders'] },
    '*.plain': { address: '{host}:15006', ids: ['spiffe://example.org/ns/shop/sa/*'] },
  },
});

function route(key: string): RouteConfig {
  return config.outbound.routes.get(key) as RouteConfig;
}

describe('namespaceRefusal', () => {
  it.each([
    ['a host with a namespace label', '*.*', 'orders.shop'],
    ['a route without {namespace}', '*.plain', 'orders.plain'],
  ])('ok/%s → no refusal', (_name, key, host) => {
    expect(namespaceRefusal(route(key), host, config.trustDomain)).toBeUndefined();
  });

  it('ok/a route with an exact ID beside {namespace} still serves a host without the label', () => {
    // `x.mixed` fills {namespace} with "mixed"; a one-label host cannot match `*.mixed`, so ask with the route directly.
    expect(namespaceRefusal(route('*.mixed'), 'solo', config.trustDomain)).toBeUndefined();
  });

  it.each([
    ['a one-label host', '*', 'solo'],
    ['a second label that is no DNS label', '*.*', 'orders.shop-'],
  ])('fail/%s → ROUTE_NOT_FOUND, reason no_namespace, naming host, route and {namespace}', (_name, key, host) => {
    const error = namespaceRefusal(route(key), host, config.trustDomain);
    expect(error?.code).toBe('MESHAUTH_ERR_ROUTE_NOT_FOUND');
    expect(error?.status).toBe(502);
    expect(error?.reason).toBe('no_namespace');
    expect(error?.detail).toEqual({ host, route: key });
    expect(error?.message).toBe(
      `host ${host} has no namespace label for {namespace} in the ids of route ${key}: call ` +
        '<service>.<namespace>[.svc.cluster.local], or give the route an exact ID',
    );
  });
});
