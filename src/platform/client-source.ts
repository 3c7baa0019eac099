// The key under which connections from one client are counted against a per-source share (the CA's door, the
// sidecar's handshake places). IPv4 by address; IPv4-mapped IPv6 as the IPv4 address it is; other IPv6 by its /64,
// the smallest prefix a site is given, so a client cannot take a new share with every address of its own subnet.
// Pure.
import { isIPv6 } from 'node:net';

export function clientSourceKey(address: string | undefined): string {
  if (address === undefined) return '';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped !== null) return mapped[1] as string;
  if (!isIPv6(address)) return address;
  return `${expandIpv6(address).slice(0, 4).join(':')}::/64`;
}

/** The eight groups of an IPv6 address, `::` expanded, lower-case, no leading zeros. */
function expandIpv6(address: string): string[] {
  const [head = '', tail] = address.toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return groups.map((group) => (group.includes('.') ? group : Number.parseInt(group, 16).toString(16)));
}
