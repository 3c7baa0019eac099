import { describe, expect, it } from 'vitest';
import { clientAddress, clientSourceKey } from '../../../src/platform/index.js';

describe('clientSourceKey', () => {
  it.each([
    ['ok/IPv4 by address', '10.1.2.3', '10.1.2.3'],
    ['ok/IPv4-mapped IPv6 is the IPv4 address', '::ffff:10.1.2.3', '10.1.2.3'],
    ['ok/IPv6 by its /64', '2001:db8:0:1:aaaa:bbbb:cccc:dddd', '2001:db8:0:1::/64'],
    ['ok/another address of the same /64', '2001:db8::1:0:0:0:1', '2001:db8:0:1::/64'],
    ['ok/leading zeros and case do not matter', '2001:0DB8:0000:0001::1', '2001:db8:0:1::/64'],
    ['ok/loopback', '::1', '0:0:0:0::/64'],
    ['ok/unknown', undefined, ''],
  ])('%s', (_name, address, key) => {
    expect(clientSourceKey(address)).toBe(key);
  });

  it('ok/two /64s are two sources', () => {
    expect(clientSourceKey('2001:db8:0:1::5')).not.toBe(clientSourceKey('2001:db8:0:2::5'));
  });
});

// What a dual-stack listener sees of an IPv4 client is reported as the IPv4 address (logs, X-Forwarded-For).
describe('clientAddress', () => {
  it.each([
    ['ok/IPv4-mapped IPv6 is the IPv4 address', '::ffff:10.0.0.5', '10.0.0.5'],
    ['ok/whatever the case', '::FFFF:10.0.0.5', '10.0.0.5'],
    ['ok/IPv4 as it is', '10.0.0.5', '10.0.0.5'],
    ['ok/IPv6 as it is', '2001:db8::5', '2001:db8::5'],
    ['ok/loopback IPv6 as it is', '::1', '::1'],
    ['ok/an IPv4-compatible address is no mapped one', '::10.0.0.5', '::10.0.0.5'],
    ['ok/unknown stays unknown', undefined, undefined],
  ])('%s', (_name, address, expected) => {
    expect(clientAddress(address)).toBe(expected);
  });
});
