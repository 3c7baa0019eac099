// The key under which connections from one client are counted against a per-source share (the CA's door, the
// sidecar's handshake places). IPv4 by address; IPv4-mapped IPv6 as the IPv4 address it is; other IPv6 by its /64,
// the smallest prefix a site is given, so a client cannot take a new share with every address of its own subnet.
// Pure.
import { parseIp } from '../authz/policy/match-ip.js';

export function clientSourceKey(address: string | undefined): string {
  if (address === undefined) return '';
  // Node's IPv4 form: the common case, and already its own key.
  if (!address.includes(':')) return address;
  const ip = parseIp(address);
  if (ip === undefined) return address;
  if (!ip.v6) return [24n, 16n, 8n, 0n].map((shift) => (ip.value >> shift) & 0xffn).join('.');
  const groups = [112n, 96n, 80n, 64n].map((shift) => ((ip.value >> shift) & 0xffffn).toString(16));
  return `${groups.join(':')}::/64`;
}
