// A number or a list of the wrong type or out of range: the message says what is accepted (the whole range) and
// echoes what was written, where zod's own read "Invalid input: expected number, received string" or
// "Too small: expected number to be >0".
import { describe, expect, it } from 'vitest';
import { loadSidecarConfig, sidecarConfigFromObject } from '../../../src/config/index.js';
import { gatewayConfigFromObject } from '../../../src/gateway/index.js';
import { parseInjectConfig } from '../../../src/k8s/index.js';
import { configRefusalMessage } from '../../helpers/config-refusal.js';

const BASE = {
  trustDomain: 'example.org',
  ca: { url: 'https://ca.example:8443', bundle: '/b.pem', token: '/t' },
};
const BASE_YAML = 'trustDomain: example.org\nca: { url: "https://ca.example:8443", bundle: /b.pem, token: /t }\n';
const ID = 'spiffe://example.org/ns/shop/sa/orders';

const fromYaml = (yaml: string) =>
  configRefusalMessage(() => loadSidecarConfig(undefined, { MESHAUTH_CONFIG_YAML: `${BASE_YAML}${yaml}` }));
const fromObject = (extra: Record<string, unknown>) =>
  configRefusalMessage(() => sidecarConfigFromObject({ ...BASE, ...extra }, 'sidecar.yaml'));

describe('numbers', () => {
  it.each([
    ['"many"', 'expected a whole number greater than 0, not the text "many"'],
    ['1.5', 'expected a whole number greater than 0, not 1.5'],
    ['-1', 'expected a whole number greater than 0, not -1'],
    ['0', 'expected a whole number greater than 0, not 0'],
    ['"10"', 'expected a whole number greater than 0, not the text "10" (write it without quotes)'],
    ['true', 'expected a whole number greater than 0, not true'],
    ['[1]', 'expected a whole number greater than 0, not a list'],
  ])('fail/inbound.limits.maxConnections: %s', (value, expected) => {
    expect(fromYaml(`inbound: { limits: { maxConnections: ${value} } }`)).toBe(
      `MESHAUTH_CONFIG_YAML: inbound.limits.maxConnections: ${expected}`,
    );
  });
  it.each([
    ['"80"', 'expected a whole number from 1 to 65535, not the text "80" (write it without quotes)'],
    ['0', 'expected a whole number from 1 to 65535, not 0'],
    ['70000', 'expected a whole number from 1 to 65535, not 70000'],
    ['80.5', 'expected a whole number from 1 to 65535, not 80.5'],
  ])('fail/admin.appProbes.c.livez.port: %s', (value, expected) => {
    expect(fromYaml(`admin: { appProbes: { c: { livez: { port: ${value}, path: /healthz } } } }`)).toBe(
      `MESHAUTH_CONFIG_YAML: admin.appProbes.c.livez.port: ${expected}`,
    );
  });
  it('fail/a bound with both ends, one of them the lower inclusive: the whole range is named', () => {
    expect(fromObject({ inbound: { limits: { maxHeaderBytes: 100 } } })).toBe(
      'sidecar.yaml: inbound.limits.maxHeaderBytes: expected a whole number from 1024 to 1048576, not 100',
    );
  });
  it('fail/0 or more', () => {
    expect(fromObject({ inbound: { limits: { maxPeerIdLabels: -3 } } })).toBe(
      'sidecar.yaml: inbound.limits.maxPeerIdLabels: expected a whole number of 0 or more, not -3',
    );
  });
  it("ok/a schema's own message still wins (maxConcurrentStreams names the HTTP/2 range)", () => {
    expect(fromObject({ inbound: { limits: { maxConcurrentStreams: 2 ** 32 } } })).toBe(
      'sidecar.yaml: inbound.limits.maxConcurrentStreams: expected at most 4294967295 (the HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS range)',
    );
  });
});

describe('lists', () => {
  it('fail/route ids given as one text', () => {
    expect(fromYaml(`outbound: { routes: { orders.shop: { address: "10.0.0.1:15006", ids: "${ID}" } } }`)).toBe(
      'MESHAUTH_CONFIG_YAML: outbound.routes["orders.shop"].ids: expected a list (YAML [a, b] or one item per "- " line), not the text "spiffe://example.org/ns/shop/sa/orders"',
    );
  });
  it('fail/endUser audiences given as one word', () => {
    const yaml =
      'inbound:\n  endUser:\n    issuers:\n      - issuer: https://idp.example\n        audiences: a\n        algorithms: [ES256]\n';
    expect(fromYaml(yaml)).toBe(
      'MESHAUTH_CONFIG_YAML: inbound.endUser.issuers[0].audiences: expected a list (YAML [a, b] or one item per "- " line), not the text "a"',
    );
  });
  it('fail/an empty list where one item is needed', () => {
    expect(fromObject({ outbound: { tcp: { '127.0.0.1:7000': { address: '10.0.0.1:15006', ids: [] } } } })).toMatch(
      /: expected a list of at least 1 item, not an empty list$/,
    );
  });
  it('fail/a long text is cut, not echoed whole', () => {
    const long = `${ID}/${'x'.repeat(200)}`;
    const message = fromObject({ outbound: { routes: { 'orders.shop': { address: '10.0.0.1:15006', ids: long } } } });
    expect(message).toContain(`not the text "${long.slice(0, 40)}…"`);
    expect(message).not.toContain('x'.repeat(60));
  });
});

describe('maps and strings', () => {
  it('fail/a section given as text', () => {
    expect(fromYaml('inbound: { limits: none }')).toBe(
      'MESHAUTH_CONFIG_YAML: inbound.limits: expected a map (one "key: value" per line), not the text "none"',
    );
  });
  it('fail/a string key given a number', () => {
    expect(fromYaml('admin: { appProbes: { c: { livez: { port: 80, path: 5 } } } }')).toBe(
      'MESHAUTH_CONFIG_YAML: admin.appProbes.c.livez.path: expected a string, not 5',
    );
  });
  it('ok/a missing key is still reported as missing', () => {
    expect(fromYaml('admin: { appProbes: { c: { livez: { path: /healthz } } } }')).toBe(
      'MESHAUTH_CONFIG_YAML: admin.appProbes.c.livez.port: required key is missing (expected a number)',
    );
  });
});

describe('gateway and inject config: the same formatter', () => {
  it('fail/gateway route ids given as one text', () => {
    const document = {
      ...BASE,
      tls: { cert: 'gateway.crt', key: 'gateway.key' },
      routes: [{ name: 'web', match: { host: 'shop.example.com' }, to: { address: 'web.shop:15006', ids: ID } }],
    };
    expect(configRefusalMessage(() => gatewayConfigFromObject(document, 'gateway.yaml'))).toBe(
      `gateway.yaml: routes[0].to.ids: expected a list (YAML [a, b] or one item per "- " line), not the text "${ID}"`,
    );
  });
  it('fail/inject noProxy given as one text', () => {
    expect(configRefusalMessage(() => parseInjectConfig('noProxy: example.org\n', 'inject.yaml'))).toBe(
      'inject.yaml: noProxy: expected a list (YAML [a, b] or one item per "- " line), not the text "example.org"',
    );
  });
});
