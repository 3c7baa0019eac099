// outbound.dns.servers go to node:dns setServers(), which takes IP literals with a port. The schema accepted any
// host:port: a host name made the start fail with a raw "Invalid IP address" (exit 1, no code, no key), and port 0
// aborted the process on a native assertion in cares_wrap (exit 134, a core dump). Both are config errors now.
import { describe, expect, it } from 'vitest';
import { loadSidecarConfig } from '../../../src/config/index.js';

const env = (servers: string[]) => ({
  MESHAUTH_TRUST_DOMAIN: 'example.org',
  MESHAUTH_CA_URL: 'https://ca.example:8443',
  MESHAUTH_CA_BUNDLE: '/b',
  MESHAUTH_CA_TOKEN: '/t',
  MESHAUTH_OUTBOUND_DNS: JSON.stringify({ servers }),
});

describe('outbound.dns.servers', () => {
  it.each([['dns.example:53'], ['localhost:53'], ['10.96.0.10:0'], ['[::1]:0']])(
    'fail/%s is refused, naming the key and the variable',
    (server) => {
      expect(() => loadSidecarConfig(undefined, env([server]))).toThrow(
        /environment: outbound\.dns\.servers\[0\] \(from MESHAUTH_OUTBOUND_DNS\): expected the IP address and port of a DNS server/,
      );
    },
  );

  it('ok/IPv4 and IPv6 literals with a port', () => {
    const config = loadSidecarConfig(undefined, env(['10.96.0.10:53', '[fd00::a]:5353']));
    expect(config.outbound.dns.servers).toEqual([
      { host: '10.96.0.10', port: 53 },
      { host: 'fd00::a', port: 5353 },
    ]);
  });
});
