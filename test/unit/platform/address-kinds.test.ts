// Addresses no workload listens on, for what a name may resolve to (outbound endpoints, egress): unspecified,
// broadcast, multicast and link-local (the cloud metadata service), in every IPv6 spelling of an IPv4 address.
import { describe, expect, it } from 'vitest';
import { isLinkLocalOrMulticast, isWorkloadAddress } from '../../../src/platform/address-kinds.js';

describe('isWorkloadAddress', () => {
  it.each(['10.1.2.3', '127.0.0.2', '192.168.0.1', '8.8.8.8', '2001:db8::1', '::1', 'fd00::5', '::ffff:10.0.0.1'])(
    'ok/%s',
    (address) => {
      expect(isWorkloadAddress(address)).toBe(true);
    },
  );
  it.each([
    '0.0.0.0',
    '0.1.2.3',
    '255.255.255.255',
    '224.0.0.1',
    '239.255.255.250',
    '169.254.169.254',
    '169.254.0.1',
    '::',
    'ff02::1',
    'FF05::2',
    'fe80::1',
    'FEB0::1',
    '::ffff:169.254.169.254',
    '::ffff:a9fe:a9fe',
    'fd00:ec2::254',
    '::ffff:0.0.0.0',
    'not-an-address',
  ])('fail/%s', (address) => {
    expect(isWorkloadAddress(address)).toBe(false);
  });
});

describe('isLinkLocalOrMulticast', () => {
  it.each(['169.254.169.254', '::ffff:a9fe:a9fe', 'fe80::1', 'fd00:ec2::254', '224.0.0.1', 'ff02::1'])(
    'fail/%s',
    (a) => {
      expect(isLinkLocalOrMulticast(a)).toBe(true);
    },
  );
  it.each(['127.0.0.1', '0.0.0.0', '10.0.0.1', 'fd00::5', 'not-an-address'])('ok/%s', (a) => {
    expect(isLinkLocalOrMulticast(a)).toBe(false);
  });
});
