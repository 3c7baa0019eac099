// Which host:port pairs the outbound CONNECT tunnel may reach (`outbound.egress`): exact host names and `*.domain`
// wildcards (a wildcard matches subdomains only, not the domain itself), each with its port (443 unless written).
// Pure; case-insensitive. Loopback targets are refused here too, whatever the list says: egress must never reach
// the local app around its own sidecar.
import { type HostPort, isLoopbackHost, parseEgressEntry } from '../../config/index.js';

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

/** Loopback and unspecified addresses, and names that mean this machine. */
export function isLoopbackTarget(host: string): boolean {
  const h = host.toLowerCase();
  return (
    isLoopbackHost(h) ||
    h.endsWith('.localhost') ||
    h === '0.0.0.0' ||
    h === '::' ||
    h === '0:0:0:0:0:0:0:1' ||
    h === '0:0:0:0:0:0:0:0' ||
    /^::ffff:127\./.test(h) ||
    /^::ffff:7f/.test(h)
  );
}
