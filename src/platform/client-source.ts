// The key under which connections from one client are counted against a per-source share (the CA's door, the
// sidecar's handshake places). IPv4 by address; IPv4-mapped IPv6 as the IPv4 address it is; other IPv6 by its /64,
// the smallest prefix a site is given, so a client cannot take a new share with every address of its own subnet.
// And the address a client is reported by (logs, X-Forwarded-For, policy). Pure.
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

const IPV4_MAPPED = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i;

/**
 * The address a client is logged and forwarded by. A dual-stack listener (`[::]`) sees an IPv4 client as
 * IPv4-mapped IPv6 (`::ffff:10.0.0.5`); it is reported as the IPv4 address it is, as an IPv4 listener reports it,
 * so one client reads the same in logs and in X-Forwarded-For whichever listener it reached.
 */
export function clientAddress(address: string | undefined): string | undefined {
  if (address === undefined || !address.startsWith('::')) return address;
  return IPV4_MAPPED.exec(address)?.[1] ?? address;
}
