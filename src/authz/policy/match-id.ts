// SPIFFE ID patterns for `from.ids`, `from.notIds` and `when.chain`. Pure.
// A pattern is an exact ID, or `<id>/*`: every ID with one or more further path segments under <id>, compared
// segment-wise (`spiffe://td/ns/a/*` matches spiffe://td/ns/a/x and …/a/x/y, never spiffe://td/ns/ab/x, and not
// spiffe://td/ns/a itself). `*` anywhere else is refused: no globbing inside segments, where a crafted ID could
// match more than the rule meant.

import { errorMessage } from '../../errors/index.js';
import { SpiffeId } from '../../identity/index.js';

export interface IdMatcher {
  readonly exact: ReadonlySet<string>;
  /** Each ends with "/"; an ID matches when it starts with one (IDs never end with "/"). */
  readonly prefixes: readonly string[];
}

/** Why the pattern is invalid, or undefined when it is valid. */
export function idPatternError(pattern: string): string | undefined {
  const base = pattern.endsWith('/*') ? pattern.slice(0, -2) : pattern;
  if (base.includes('*')) {
    return 'expected a SPIFFE ID, or an ID prefix ending in "/*" ("*" is only allowed as the last segment)';
  }
  try {
    const id = SpiffeId.parse(base);
    if (base === pattern && id.isTrustDomainId) {
      return 'a trust domain ID names no workload: use from.trustDomains, or "spiffe://<td>/*" for every workload';
    }
    return undefined;
  } catch (error) {
    return errorMessage(error);
  }
}

export function compileIdMatcher(patterns: readonly string[]): IdMatcher {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const pattern of patterns) {
    if (pattern.endsWith('/*')) prefixes.push(pattern.slice(0, -1));
    else exact.add(pattern);
  }
  return { exact, prefixes };
}

export function idMatches(matcher: IdMatcher, id: string): boolean {
  if (matcher.exact.has(id)) return true;
  for (const prefix of matcher.prefixes) {
    if (id.length > prefix.length && id.startsWith(prefix)) return true;
  }
  return false;
}
