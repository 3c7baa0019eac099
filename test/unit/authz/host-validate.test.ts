import { describe, expect, it } from 'vitest';
import { isHostPort } from '../../../src/authz/host-validate.js';

// A host a URL parser reads as an IP address is accepted in one spelling only: the one `to.hosts` compares. The
// others (found by a probe: `127.1` passed a deny on 127.0.0.1 and reached an app that read it as 127.0.0.1) are
// refused before any rule runs.
describe('isHostPort', () => {
  it.each([
    ['ok/name', 'orders.shop.svc'],
    ['ok/name with port', 'orders.shop.svc:8080'],
    ['ok/name with a trailing dot', 'orders.shop.svc.'],
    ['ok/name ending in hex letters', 'cafe.face'],
    ['ok/name with a digit label inside', '127.shop'],
    ['ok/name ending in digits and letters', 'web.v2'],
    ['ok/underscore name', '_admin.internal'],
    ['ok/dotted quad', '127.0.0.1'],
    ['ok/dotted quad with port', '127.0.0.1:80'],
    ['ok/dotted quad with a trailing dot (to.hosts strips it)', '127.0.0.1.'],
    ['ok/dotted quad with zeros', '0.0.0.0'],
    ['ok/dotted quad at the top', '255.255.255.255'],
    ['ok/canonical IPv6', '[::1]'],
    ['ok/canonical IPv6 with port', '[::1]:8080'],
    ['ok/canonical IPv6 in capitals (to.hosts lower-cases)', '[2001:DB8::1]'],
    ['ok/canonical IPv4-mapped IPv6', '[::ffff:7f00:1]'],
  ])('%s', (_name, value) => {
    expect(isHostPort(value)).toBe(true);
  });

  it.each([
    ['fail/two parts', '127.1'],
    ['fail/two parts with port', '127.1:80'],
    ['fail/one decimal number', '2130706433'],
    ['fail/hex part', '0x7f.0.0.1'],
    ['fail/hex last part', '127.0.0.0x1'],
    ['fail/bare 0x last part', 'a.0x'],
    ['fail/hex whole', '0x7F000001'],
    ['fail/leading zero (octal to inet_aton)', '127.0.0.01'],
    ['fail/octal part', '0177.0.0.1'],
    ['fail/part above 255', '127.0.0.256'],
    ['fail/five parts', '1.2.3.4.5'],
    ['fail/name ending in a number', 'orders.shop.1'],
    ['fail/number with a trailing dot', '127.1.'],
    ['fail/zero run spelt out', '[0::1]'],
    ['fail/all groups', '[0:0:0:0:0:0:0:1]'],
    ['fail/leading zeros in a group', '[::0001]'],
    ['fail/IPv4-mapped in dotted form', '[::ffff:127.0.0.1]'],
    ['fail/not an IPv6 address', '[a:b.cafe]'],
    ['fail/two zero runs', '[1::2::3]'],
  ])('%s', (_name, value) => {
    expect(isHostPort(value)).toBe(false);
  });
});
