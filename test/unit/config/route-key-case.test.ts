// Route keys are host names, matched case-insensitively (resolveSidecarConfig lower-cases them). Two keys that differ
// only in case are the same route: the YAML parser's duplicate-key check does not see them, and the resolved config
// kept whichever came last, silently. A reviewer reading `orders.shop → …/sa/orders` could not tell that a later
// `Orders.Shop` entry (an overlay, a merged MESHAUTH_OUTBOUND_ROUTES) sends orders' traffic to another peer and
// identity. Such a config is refused, naming both keys.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSidecarConfig } from '../../../src/config/index.js';
import { isMeshauthError } from '../../../src/errors/index.js';

const dir = mkdtempSync(join(tmpdir(), 'meshauth-route-case-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const FILE = `trustDomain: example.org
ca: { url: "https://ca.example:8443", bundle: /etc/meshauth/bundle.pem, token: /var/run/token }
outbound:
  routes:
    orders.shop: { address: "orders.shop.svc:15006", ids: ["spiffe://example.org/ns/shop/sa/orders"] }
    Orders.Shop: { address: "evil.other.svc:15006", ids: ["spiffe://example.org/ns/other/sa/evil"] }
`;

describe('outbound.routes keys that differ only in case', () => {
  it('fail/are refused, naming both keys, instead of the last one winning', () => {
    const file = join(dir, 'sidecar.yaml');
    writeFileSync(file, FILE);
    let caught: unknown;
    try {
      const config = loadSidecarConfig(file, {});
      caught = new Error(
        `accepted; orders.shop resolves to ${JSON.stringify(config.outbound.routes.get('orders.shop'))}`,
      );
    } catch (error) {
      caught = error;
    }
    expect(isMeshauthError(caught, 'MESHAUTH_ERR_CONFIG_INVALID'), String(caught)).toBe(true);
    const message = (caught as Error).message;
    expect(message).toContain(`${file}: outbound.routes`);
    expect(message).toContain('orders.shop');
    expect(message).toContain('Orders.Shop');
  });

  it('fail/also when they come from MESHAUTH_OUTBOUND_ROUTES', () => {
    let caught: unknown;
    try {
      loadSidecarConfig(undefined, {
        MESHAUTH_TRUST_DOMAIN: 'example.org',
        MESHAUTH_CA_URL: 'https://ca.example:8443',
        MESHAUTH_CA_BUNDLE: '/b',
        MESHAUTH_CA_TOKEN: '/t',
        MESHAUTH_OUTBOUND_ROUTES: JSON.stringify({
          '*.shop': { address: '{host}:15006' },
          '*.SHOP': { address: 'elsewhere:15006' },
        }),
      });
    } catch (error) {
      caught = error;
    }
    expect(isMeshauthError(caught, 'MESHAUTH_ERR_CONFIG_INVALID'), String(caught)).toBe(true);
    expect((caught as Error).message).toContain('(from MESHAUTH_OUTBOUND_ROUTES)');
  });

  it('ok/distinct hosts in mixed case still load, lower-cased', () => {
    const file = join(dir, 'ok.yaml');
    writeFileSync(file, FILE.replace('Orders.Shop', 'Billing.Shop'));
    const config = loadSidecarConfig(file, {});
    expect([...config.outbound.routes.keys()].sort()).toEqual(['billing.shop', 'orders.shop']);
  });
});
