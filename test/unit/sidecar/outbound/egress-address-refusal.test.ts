// What an allowed egress target may resolve to. Loopback was refused before; a name resolving to a link-local or
// multicast address (the cloud metadata service at 169.254.169.254, or fd00:ec2::254) went through: a wildcard entry
// over a zone someone else runs, or a record changed later, could lead a tunnel there. An address listed as such in
// `outbound.egress` stays the operator's choice.
import { describe, expect, it } from 'vitest';
import { egressAddressRefusal } from '../../../../src/sidecar/outbound/egress-matcher.js';

describe('egressAddressRefusal', () => {
  it.each([
    ['api.example.com', ['93.184.216.34']],
    ['api.example.com', ['2606:2800:220:1::1', '93.184.216.34']],
    ['api.example.com', ['10.0.0.5', 'fd00::5']],
    ['169.254.169.254', ['169.254.169.254']],
  ])('ok/%s → %j', (host, addresses) => {
    expect(egressAddressRefusal(host, addresses)).toBeUndefined();
  });

  it.each([
    ['api.example.com', ['127.0.0.1'], 'egress_loopback'],
    ['api.example.com', ['93.184.216.34', '::1'], 'egress_loopback'],
    ['127.0.0.2', ['127.0.0.2'], 'egress_loopback'],
    ['metadata.example.com', ['169.254.169.254'], 'egress_link_local'],
    ['api.example.com', ['93.184.216.34', '169.254.0.1'], 'egress_link_local'],
    ['api.example.com', ['::ffff:169.254.169.254'], 'egress_link_local'],
    ['api.example.com', ['fe80::1'], 'egress_link_local'],
    ['api.example.com', ['fd00:ec2::254'], 'egress_link_local'],
    ['api.example.com', ['224.0.0.251'], 'egress_link_local'],
    ['api.example.com', ['ff02::fb'], 'egress_link_local'],
  ])('fail/%s → %j: %s', (host, addresses, reason) => {
    expect(egressAddressRefusal(host, addresses)).toBe(reason);
  });
});
