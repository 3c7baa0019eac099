import { describe, expect, it } from 'vitest';
import { type Cidr, cidrContains, parseCidr, parseIp } from '../../../src/authz/policy/match-ip.js';

function contains(range: string, ip: string): boolean {
  const cidr = parseCidr(range);
  const address = parseIp(ip);
  if (typeof cidr === 'string' || address === undefined) throw new Error(`bad fixture ${range} ${ip}`);
  return cidrContains(cidr as Cidr, address);
}

describe('source IP ranges', () => {
  it.each([
    ['ok/v4-in', '10.0.0.0/8', '10.200.1.2', true],
    ['fail/v4-out', '10.0.0.0/8', '11.0.0.1', false],
    ['ok/v4-single', '192.168.1.5', '192.168.1.5', true],
    ['fail/v4-single-other', '192.168.1.5', '192.168.1.6', false],
    ['ok/v4-zero-prefix', '0.0.0.0/0', '203.0.113.9', true],
    ['ok/v4-mapped-request', '10.0.0.0/8', '::ffff:10.1.2.3', true],
    ['ok/v4-mapped-policy', '::ffff:10.0.0.0/104', '10.1.2.3', true],
    ['fail/v4-range-v6-address', '10.0.0.0/8', 'fd00::1', false],
    ['ok/v6-in', 'fd00::/8', 'fd12:3456::1', true],
    ['fail/v6-out', 'fd00::/8', 'fe80::1', false],
    ['ok/v6-loopback', '::1', '::1', true],
    ['ok/v6-full-form', '2001:db8::/32', '2001:0db8:0000:0000:0000:0000:0000:0001', true],
    ['ok/v6-zone-on-request', 'fe80::/10', 'fe80::1%eth0', true],
    ['fail/v6-range-v4-address', '::/0', '10.0.0.1', false],
  ])('%s', (_name, range, ip, expected) => {
    expect(contains(range, ip)).toBe(expected);
  });

  it.each([
    ['fail/host-bits', '10.0.0.1/8'],
    ['fail/prefix-too-long', '10.0.0.0/33'],
    ['fail/v6-prefix-too-long', 'fd00::/129'],
    ['fail/leading-zero-octet', '010.0.0.0/8'],
    ['fail/octet-range', '256.0.0.0/8'],
    ['fail/two-double-colons', '1::2::3'],
    ['fail/too-many-groups', '1:2:3:4:5:6:7:8:9'],
    ['fail/zone', 'fe80::1%eth0'],
    ['fail/garbage', 'localhost'],
    ['fail/empty-prefix', '10.0.0.0/'],
    ['fail/v4-not-last', '1.2.3.4::'],
  ])('%s', (_name, range) => {
    expect(parseCidr(range)).toEqual(expect.any(String));
  });

  it('fail/unparseable request address', () => {
    expect(parseIp('not-an-ip')).toBeUndefined();
    expect(parseIp('')).toBeUndefined();
  });
});
