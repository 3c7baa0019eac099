// `host:port` values (listen addresses, app, route addresses, DNS servers): a bracketed host is an IPv6 literal,
// whole. Text that only looked like one passed the config check and reached the resolver as a name at bind or
// connect time (listen ENOTFOUND), after the sidecar had started its other listeners.
import { describe, expect, it } from 'vitest';
import { parseHostPort, sidecarConfigFromObject } from '../../../src/config/index.js';

describe('parseHostPort: IPv6 literals', () => {
  it.each([
    ['ok/every interface', '[::]:15006', { host: '::', port: 15006 }],
    ['ok/loopback', '[::1]:15001', { host: '::1', port: 15001 }],
    ['ok/the long form', '[0:0:0:0:0:0:0:1]:80', { host: '0:0:0:0:0:0:0:1', port: 80 }],
    ['ok/IPv4-mapped', '[::ffff:127.0.0.1]:0', { host: '::ffff:127.0.0.1', port: 0 }],
    ['ok/a ULA address', '[fd00::a]:53', { host: 'fd00::a', port: 53 }],
  ])('%s', (_name, text, expected) => {
    expect(parseHostPort(text)).toEqual(expected);
  });

  it.each([
    ['fail/three colons', '[:::1]:15006'],
    ['fail/two ::', '[1::2::3]:15006'],
    ['fail/a group of five digits', '[12345::1]:15006'],
    ['fail/a short embedded IPv4', '[::1.2.3]:15006'],
    ['fail/nine groups', '[1:2:3:4:5:6:7:8:9]:15006'],
    ['fail/a zone ID', '[fe80::1%eth0]:15006'],
    ['fail/IPv4 in brackets', '[127.0.0.1]:15006'],
    ['fail/no closing bracket', '[::1:15006'],
  ])('%s', (_name, text) => {
    expect(parseHostPort(text)).toBeUndefined();
  });
});

describe('parseHostPort: host names', () => {
  it.each([
    ['ok/one label', 'orders:15006'],
    ['ok/a cluster name', 'orders.shop.svc.cluster.local:15006'],
    ['ok/a hyphen inside a label', 'my-app.shop:80'],
    ['ok/a label of 63', `${'a'.repeat(63)}.shop:80`],
  ])('%s', (_name, text) => {
    expect(parseHostPort(text)?.host).toBe(text.slice(0, text.lastIndexOf(':')));
  });

  // An empty label reached the egress matcher as a CONNECT target and matched `*.googleapis.com`.
  it.each([
    ['fail/an empty label', 'a..googleapis.com:443'],
    ['fail/a leading dot', '.googleapis.com:443'],
    ['fail/a trailing dot', 'orders.shop.:80'],
    ['fail/a label starting with a hyphen', 'a.-b.shop:80'],
    ['fail/ending in a hyphen', 'orders-:80'],
    ['fail/a label of 64', `${'a'.repeat(64)}.shop:80`],
    ['fail/over 253', `${'a.'.repeat(127)}ab:80`],
    ['fail/an underscore', 'a_b.shop:80'],
  ])('%s', (_name, text) => {
    expect(parseHostPort(text)).toBeUndefined();
  });
});

describe('a sidecar config with a malformed IPv6 listen address', () => {
  it('fail/refused at the check, naming the key, not at bind with ENOTFOUND', () => {
    const load = () =>
      sidecarConfigFromObject(
        {
          trustDomain: 'example.org',
          ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent', token: '/nonexistent' },
          inbound: { listen: '[:::1]:15006' },
        },
        'sidecar.yaml',
      );
    expect(load).toThrow(expect.objectContaining({ code: 'MESHAUTH_ERR_CONFIG_INVALID' }));
    expect(load).toThrow(/sidecar\.yaml: inbound\.listen: expected host:port/);
  });
});
