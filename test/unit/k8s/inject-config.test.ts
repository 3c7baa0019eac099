// inject.yaml: strict keys, values checked, defaults filled in a second step; messages name file, key, expectation.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isMeshauthError } from '../../../src/errors/index.js';
import { INJECT_DEFAULTS, parseInjectConfig } from '../../../src/k8s/index.js';

function problem(text: string): string {
  try {
    parseInjectConfig(text, 'inject.yaml');
  } catch (error) {
    expect(isMeshauthError(error, 'MESHAUTH_ERR_CONFIG_INVALID')).toBe(true);
    return (error as Error).message;
  }
  throw new Error('expected a config error');
}

describe('parseInjectConfig', () => {
  it('ok/empty file: every default', () => {
    const config = parseInjectConfig('', 'inject.yaml');
    expect(config).toEqual({
      trustDomain: INJECT_DEFAULTS.trustDomain,
      image: INJECT_DEFAULTS.image,
      imagePullPolicy: 'IfNotPresent',
      caUrl: 'https://meshauth-ca.meshauth.svc:8443',
      clusterDomain: 'cluster.local',
      proxy: { cpu: '50m', memory: '128Mi', cpuLimit: '1', memoryLimit: '256Mi' },
      logLevel: 'info',
      noProxy: [],
      failClosed: false,
      endUser: undefined,
      trustForwardedFrom: undefined,
    });
  });

  it('ok/every key', () => {
    const config = parseInjectConfig(
      [
        'trustDomain: prod.example.org',
        'image: registry.example.org/meshauth:0.2.0',
        'imagePullPolicy: Always',
        'ca: { url: "https://ca.meshauth.svc:8443" }',
        'clusterDomain: k8s.internal',
        'proxy: { cpu: 100m, memory: 96Mi, cpuLimit: "2", memoryLimit: 1Gi }',
        'logLevel: warn',
        'noProxy: [".corp.example.com", "10.0.0.0/8"]',
        'failClosed: true',
        'endUser: { issuers: [{ issuer: "https://login.example.org", audiences: [orders], algorithms: [ES256] }] }',
        'trustForwardedFrom: [spiffe://prod.example.org/ns/edge/sa/gateway]',
      ].join('\n'),
      'inject.yaml',
    );
    expect(config).toMatchObject({ trustDomain: 'prod.example.org', clusterDomain: 'k8s.internal', failClosed: true });
    expect(config.proxy).toEqual({ cpu: '100m', memory: '96Mi', cpuLimit: '2', memoryLimit: '1Gi' });
    expect(config.endUser?.issuers[0]?.issuer).toBe('https://login.example.org');
    expect(config.trustForwardedFrom).toEqual(['spiffe://prod.example.org/ns/edge/sa/gateway']);
  });

  it('ok/the inject.yaml that deploy/ ships is accepted', () => {
    const file = new URL('../../../deploy/base/inject.yaml', import.meta.url).pathname;
    expect(parseInjectConfig(readFileSync(file, 'utf8'), file).trustDomain).toBe('example.org');
  });

  for (const [name, text, expected] of [
    ['unknown key', 'trustdomain: x', /inject\.yaml: trustdomain \(did you mean trustDomain\?\): unknown key/],
    [
      'unknown nested key',
      'proxy: { cpus: 1 }',
      /inject\.yaml: proxy\.cpus \(did you mean cpu\?\): unknown key; allowed here: cpu, memory, cpuLimit, memoryLimit/,
    ],
    [
      'trust domain with scheme',
      'trustDomain: spiffe://example.org',
      /inject\.yaml: trustDomain: expected a trust domain/,
    ],
    ['bad quantity', 'proxy: { memory: 1GB }', /inject\.yaml: proxy\.memory: expected a Kubernetes quantity/],
    ['plain http CA', 'ca: { url: "http://ca:8080" }', /inject\.yaml: ca\.url: expected an https:\/\/ URL/],
    ['bad pull policy', 'imagePullPolicy: sometimes', /inject\.yaml: imagePullPolicy: /],
    ['bad log level', 'logLevel: loud', /inject\.yaml: logLevel: /],
    ['noProxy with a comma', 'noProxy: ["a,b"]', /inject\.yaml: noProxy\[0\]: expected a host/],
    [
      'endUser with an unknown key',
      'endUser: { issuer: x }',
      /inject\.yaml: endUser\.issuer \(did you mean issuers\?\): unknown key/,
    ],
    [
      'endUser issuer without audiences',
      'endUser: { issuers: [{ issuer: "https://a.b", algorithms: [ES256] }] }',
      /inject\.yaml: endUser\.issuers\[0\]\.audiences: required key is missing \(expected a list\)/,
    ],
    [
      'a voucher of another trust domain',
      'trustDomain: example.org\nendUser: { issuers: [{ issuer: "https://a.b", audiences: [x], algorithms: [ES256] }], vouchers: ["spiffe://other.org/ns/edge/sa/gw"] }',
      /inject\.yaml: endUser\.vouchers\[0\]: expected an ID in trust domain example\.org \(trustDomain\), not other\.org: meshauth has no federation/,
    ],
    [
      'a voucher outside the default trust domain',
      'endUser: { issuers: [{ issuer: "https://a.b", audiences: [x], algorithms: [ES256] }], vouchers: ["spiffe://example.org/ns/edge/sa/gw"] }',
      /inject\.yaml: endUser\.vouchers\[0\]: expected an ID in trust domain cluster\.local \(trustDomain\), not example\.org/,
    ],
    [
      'a trusted forwarder of another trust domain',
      'trustDomain: example.org\ntrustForwardedFrom: ["spiffe://other.org/ns/edge/sa/gw"]',
      /inject\.yaml: trustForwardedFrom\[0\]: expected an ID in trust domain example\.org \(trustDomain\), not other\.org/,
    ],
    ['not YAML', 'a: [', /inject\.yaml: line 1: not valid YAML/],
    [
      'an unresolved tag (a warning of the YAML parser)',
      'trustDomain: !nonsense a',
      /inject\.yaml: line 1: not valid YAML \(TAG_RESOLVE_FAILED\)/,
    ],
    ['a key given twice', 'image: a\nimage: b', /inject\.yaml: line 2: not valid YAML \(DUPLICATE_KEY\)/],
    ['an alias without its anchor', 'image: *nowhere', /inject\.yaml:.* not valid YAML/],
    ['not a mapping', '- a', /inject\.yaml: \(top level\)/],
  ] as const) {
    it(`fail/${name}`, () => {
      expect(problem(text)).toMatch(expected);
    });
  }
});
