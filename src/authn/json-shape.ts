// What JSON.parse lets through in a token's header or claims and a stricter reader would not (a
// JWT's claim names must be unique, and what parsers may read differently is refused). JSON.parse
// keeps the last of two equal names, other parsers the first (or refuse), so a token with `"aud":"x","aud":"ours"`
// means one thing here and another to an app or a proxy that reads it too. Names are compared decoded:
// `"s\u0075b"` is `"sub"`. Nesting is bounded so no claim set is worth a deep walk anywhere later. Pure.

/** Deeper than any claim set a real issuer writes (`realm_access.roles` is 2). */
export const MAX_JSON_DEPTH = 32;

export type JsonShapeError = 'duplicate_name' | 'too_deep';

/**
 * Why `text`, already accepted by JSON.parse, is not a strict JSON text: a member name twice in one object, or
 * nesting deeper than MAX_JSON_DEPTH. Undefined when it is fine.
 */
export function jsonShapeError(text: string): JsonShapeError | undefined {
  // One entry per open container: the names seen so far for an object, null for an array.
  const open: (Set<string> | null)[] = [];
  let expectName = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const end = stringEnd(text, i);
      const names = open.at(-1);
      if (expectName && names instanceof Set) {
        const name = JSON.parse(text.slice(i, end + 1)) as string;
        if (names.has(name)) return 'duplicate_name';
        names.add(name);
        expectName = false;
      }
      i = end;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (open.length >= MAX_JSON_DEPTH) return 'too_deep';
      open.push(c === 0x7b ? new Set() : null);
      expectName = c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      open.pop();
      expectName = false;
    } else if (c === 0x2c /* , */) {
      expectName = open.at(-1) instanceof Set;
    }
  }
  return undefined;
}

/** Index of the quote closing the string that opens at `start` (valid JSON: it exists). */
function stringEnd(text: string, start: number): number {
  let i = start + 1;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x5c /* \ */) i += 2;
    else if (c === 0x22) return i;
    else i++;
  }
  return text.length - 1;
}
