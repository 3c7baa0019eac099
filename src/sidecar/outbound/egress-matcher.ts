// Which hosts the outbound CONNECT tunnel may reach (`outbound.egress`): exact host names and `*.domain`
// wildcards (a wildcard matches subdomains only, not the domain itself). Pure; case-insensitive.

export type EgressMatcher = (host: string) => boolean;

export function egressMatcher(patterns: readonly string[]): EgressMatcher {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const pattern of patterns) {
    const p = pattern.toLowerCase();
    if (p.startsWith('*.')) suffixes.push(p.slice(1));
    else exact.add(p);
  }
  return (host) => {
    const h = host.toLowerCase().replace(/\.$/, '');
    if (exact.has(h)) return true;
    for (const suffix of suffixes) {
      if (h.length > suffix.length && h.endsWith(suffix)) return true;
    }
    return false;
  };
}
