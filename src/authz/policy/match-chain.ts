// Call-chain conditions for `when.chain`. Pure.
// The call path is the passport's chain (earlier hops, first hop first) followed by the mTLS peer itself, so
// "came through the gateway" also holds when the gateway is the direct caller. A request from the external
// listener has neither (no peer, no chain), so no chain condition matches it. `includes`: at least one hop on the
// path matches one of the patterns. `startsWith`: the first hop (the peer when there is no chain) matches.
import { type IdMatcher, idMatches } from './match-id.js';

export function chainIncludes(
  matcher: IdMatcher,
  chain: readonly string[] | undefined,
  peer: string | undefined,
): boolean {
  if (chain !== undefined) {
    for (const hop of chain) {
      if (idMatches(matcher, hop)) return true;
    }
  }
  return peer !== undefined && idMatches(matcher, peer);
}

export function chainStartsWith(
  matcher: IdMatcher,
  chain: readonly string[] | undefined,
  peer: string | undefined,
): boolean {
  const first = chain !== undefined && chain.length > 0 ? chain[0] : peer;
  return first !== undefined && idMatches(matcher, first);
}
