// What an unknown config key could have meant: the keys the schema allows at that place, and the closest of them.
// Pure; the allowed keys come from the schema's leaf paths (config-reference.ts `configKeys`), in which `[]` marks a
// list item and `<name>` a map key.

/** The keys allowed directly under `parent` (a zod issue path), or [] when the place is unknown. */
export function keysAt(parent: readonly PropertyKey[], leafPaths: readonly string[]): string[] {
  const keys = new Set<string>();
  for (const leaf of leafPaths) {
    const tokens = tokenize(leaf);
    if (tokens.length <= parent.length) continue;
    if (!parent.every((part, i) => matches(tokens[i] as string, part))) continue;
    const next = tokens[parent.length] as string;
    if (next !== '[]' && !next.startsWith('<')) keys.add(next);
  }
  return [...keys];
}

/**
 * zod's unknown keys under `parentPath` (written `parentKey` in messages) for a loader's message: `names`, each key
 * with the closest allowed one when one is close (`a.pathprefix (did you mean pathPrefix?)`), and `allowedHere`,
 * `; allowed here: …` or '' when the place is not in `leafPaths`.
 */
export function unknownKeysText(
  parentKey: string,
  parentPath: readonly PropertyKey[],
  keys: readonly string[],
  leafPaths: readonly string[],
): { readonly names: string; readonly allowedHere: string } {
  const allowed = keysAt(parentPath, leafPaths);
  const names = keys.map((k) => {
    const near = closestKey(k, allowed);
    return `${parentKey === '' ? k : `${parentKey}.${k}`}${near === undefined ? '' : ` (did you mean ${near}?)`}`;
  });
  return { names: names.join(', '), allowedHere: allowed.length === 0 ? '' : `; allowed here: ${allowed.join(', ')}` };
}

/** The allowed key closest to `name` (case aside, or a few letters off), if any is close enough to suggest. */
export function closestKey(name: string, allowed: readonly string[]): string | undefined {
  const close = Math.max(1, Math.floor(name.length / 3));
  let best: { key: string; distance: number } | undefined;
  for (const key of allowed) {
    // The lengths' difference is a lower bound of the distance: a key it already puts too far is not measured (the
    // work grows with both lengths, and a webhook reads names of any length from whoever creates pods).
    if (Math.abs(name.length - key.length) > close) continue;
    const distance = editDistance(name.toLowerCase(), key.toLowerCase());
    if (best === undefined || distance < best.distance) best = { key, distance };
  }
  if (best === undefined) return undefined;
  return best.distance <= close ? best.key : undefined;
}

function tokenize(leaf: string): string[] {
  return leaf.split('.').flatMap((segment) => (segment.endsWith('[]') ? [segment.slice(0, -2), '[]'] : [segment]));
}

function matches(token: string, part: PropertyKey): boolean {
  if (token === '[]') return typeof part === 'number';
  if (token.startsWith('<')) return typeof part === 'string';
  return token === part;
}

/**
 * Edit distance counting a swap of two neighbouring letters as one edit, as a typo is (optimal string alignment;
 * both strings are short key names): `ulr` is one edit from `url`, not two.
 */
function editDistance(a: string, b: string): number {
  let beforePrevious: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      let distance = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        distance = Math.min(distance, (beforePrevious[j - 2] as number) + 1);
      }
      current.push(distance);
    }
    beforePrevious = previous;
    previous = current;
  }
  return previous[b.length] as number;
}
