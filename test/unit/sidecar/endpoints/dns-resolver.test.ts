// Without outbound.dns.servers the sidecar resolves names the way the pod's apps do (getaddrinfo: resolv.conf search
// list and ndots, /etc/hosts), so a short cluster name never goes to public DNS as written.
import { describe, expect, it } from 'vitest';
import { AddressResolver } from '../../../../src/sidecar/endpoints/dns-resolver.js';
import { Metrics } from '../../../../src/telemetry/index.js';

describe('AddressResolver without configured servers', () => {
  it('ok/an /etc/hosts name resolves through getaddrinfo, re-resolved after 5 s', async () => {
    const metrics = new Metrics();
    const resolution = await new AddressResolver([], metrics).resolve('localhost');
    expect(resolution.addresses.some((a) => a === '127.0.0.1' || a === '::1')).toBe(true);
    expect(resolution.ttlSeconds).toBe(5);
    const text = await metrics.registry.getSingleMetricAsString('meshauth_dns_resolutions_total');
    expect(text).toContain('result="success"} 1');
  });
});
