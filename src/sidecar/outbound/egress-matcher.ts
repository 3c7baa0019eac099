// Which host:port pairs the outbound CONNECT tunnel may reach (`outbound.egress`): exact host names and `*.domain`
// wildcards (a wildcard matches subdomains only, not the domain itself), each with its port (443 unless written).
// Pure; case-insensitive. Loopback targets are refused here too, whatever the list says: egress must never reach
// the local app around its own sidecar.
import { BlockList, isIP } from 'node:net';
import { type HostPort, isLoopbackHost, parseEgressEntry } from '../../config/index.js';
import { isLinkLocalOrMulticast } from '../../platform/address-kinds.js';

export type EgressMatcher = (host: string, port?: number) => boolean;

const DEFAULT_PORT = 443;

export function egressMatcher(entries: readonly (HostPort | string)[]): EgressMatcher {
  const exact = new Set<string>();
  const suffixes: { readonly suffix: string; readonly port: number }[] = [];
  for (const entry of entries) {
    const parsed = typeof entry === 'string' ? parseEgressEntry(entry) : entry;
    if (parsed === undefined) continue;
    const host = parsed.host.toLowerCase();
    if (host.startsWith('*.')) suffixes.push({ suffix: host.slice(1), port: parsed.port });
    else exact.add(`${host}:${parsed.port}`);
  }
  return (host, port = DEFAULT_PORT) => {
    const h = host.toLowerCase().replace(/\.$/, '');
    if (isLoopbackTarget(h)) return false;
    if (exact.has(`${h}:${port}`)) return true;
    for (const { suffix, port: allowed } of suffixes) {
      if (allowed === port && h.length > suffix.length && h.endsWith(suffix)) return true;
    }
    return false;
  };
}

/**
 * Addresses a connect reaches this machine through: 127.0.0.0/8, 0.0.0.0/8 (Linux connects "this network" to the
 * local host), `::` and `::1`. Node's BlockList also matches their IPv4-mapped forms (`::ffff:127.0.0.1`,
 * `::ffff:7f00:1`, `::ffff:0.0.0.0`) against the IPv4 ranges, which text patterns missed.
 */
const THIS_MACHINE = new BlockList();
THIS_MACHINE.addSubnet('127.0.0.0', 8, 'ipv4');
THIS_MACHINE.addSubnet('0.0.0.0', 8, 'ipv4');
THIS_MACHINE.addAddress('::', 'ipv6');
THIS_MACHINE.addAddress('::1', 'ipv6');

/** Loopback and unspecified addresses in any notation, and names that mean this machine. */
export function isLoopbackTarget(host: string): boolean {
  const h = host.toLowerCase();
  const family = isIP(h);
  if (family !== 0) return THIS_MACHINE.check(h, family === 6 ? 'ipv6' : 'ipv4');
  return isLoopbackHost(h) || h === 'localhost' || h.endsWith('.localhost');
}

/**
 * Why the addresses an allowed egress `host` resolved to must not be connected to, or undefined. Loopback for any
 * target; link-local and multicast only for a name, since an address listed in `outbound.egress` as such is the
 * operator's explicit choice, while a name (a wildcard entry over a zone someone else runs, a record changed later)
 * must not lead a tunnel to the metadata service.
 */
export function egressAddressRefusal(
  host: string,
  addresses: readonly string[],
): 'egress_loopback' | 'egress_link_local' | undefined {
  if (addresses.some((a) => isLoopbackTarget(a))) return 'egress_loopback';
  if (isIP(host) !== 0) return undefined;
  return addresses.some(isLinkLocalOrMulticast) ? 'egress_link_local' : undefined;
}
