// Turns a route address host into the IP addresses to connect to. The one place TCP tunnels resolve names, so
// the composition root can swap in the shared endpoint resolver (outbound.dns servers) by passing another
// ResolveHost. An IP literal resolves to itself without a lookup.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

/** Every address of `host` (A and AAAA), in resolver order; rejects when there is none. */
export type ResolveHost = (host: string) => Promise<readonly string[]>;

export const systemResolveHost: ResolveHost = async (host) => {
  if (isIP(host) !== 0) return [host];
  const records = await lookup(host, { all: true, verbatim: true });
  if (records.length === 0) throw Object.assign(new Error(`${host}: no address`), { code: 'ENOTFOUND' });
  return records.map((r) => r.address);
};

/** What resolveHostWith needs of the shared endpoint resolver (src/sidecar/endpoints AddressResolver). */
export interface AddressSource {
  resolve(name: string): Promise<{ readonly addresses: readonly string[] }>;
}

/**
 * A ResolveHost over the sidecar's shared resolver (`outbound.dns.servers`, TTLs, the DNS metric), so TCP routes
 * resolve names exactly as HTTP routes do. An IP literal is used as is.
 */
export function resolveHostWith(source: AddressSource): ResolveHost {
  return async (host) => {
    if (isIP(host) !== 0) return [host];
    const { addresses } = await source.resolve(host);
    if (addresses.length === 0) throw Object.assign(new Error(`${host}: no address`), { code: 'ENOTFOUND' });
    return addresses;
  };
}
