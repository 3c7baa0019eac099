// A JSON Patch between two JSON values: what the webhook returns, and what the CLI applies to the YAML
// document so comments and formatting outside the changed nodes survive. Arrays are aligned on their common prefix
// and suffix and a longest common subsequence of what lies between, so inserting the sidecar at initContainers[0]
// is one `add`, not a rewrite of every item. Pure.
import { deepEqual, isObject } from './inject-json.js';

export type PatchOperation =
  | { readonly op: 'add'; readonly path: string; readonly value: unknown }
  | { readonly op: 'remove'; readonly path: string }
  | { readonly op: 'replace'; readonly path: string; readonly value: unknown };

/** Escapes one reference token (`~` → `~0`, `/` → `~1`). */
export function escapePointerToken(token: string): string {
  return token.replaceAll('~', '~0').replaceAll('/', '~1');
}

export function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((t) => t.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/** The operations that turn `from` into `to`, applied in order. */
export function diffJson(from: unknown, to: unknown, path = ''): PatchOperation[] {
  if (deepEqual(from, to)) return [];
  if (Array.isArray(from) && Array.isArray(to)) return diffArrays(from, to, path);
  if (isObject(from) && isObject(to)) {
    const ops: PatchOperation[] = [];
    for (const key of Object.keys(from)) {
      const child = `${path}/${escapePointerToken(key)}`;
      if (!Object.hasOwn(to, key)) ops.push({ op: 'remove', path: child });
      else ops.push(...diffJson(from[key], to[key], child));
    }
    for (const key of Object.keys(to)) {
      if (!Object.hasOwn(from, key))
        ops.push({ op: 'add', path: `${path}/${escapePointerToken(key)}`, value: to[key] });
    }
    return ops;
  }
  return [{ op: 'replace', path, value: to }];
}

/**
 * Past this many cells (middle of `from` × middle of `to`) an array is replaced whole instead of aligned. The pod
 * under review comes from whoever may create pods, before the API server validates it: a container with thousands
 * of env entries made the O(n·m) table take the webhook past its memory limit. Injection itself only prepends,
 * appends and edits items in place, which the prefix and suffix absorb, so real pods never come near it.
 */
export const MAX_ALIGNMENT_CELLS = 250_000;

function diffArrays(from: readonly unknown[], to: readonly unknown[], path: string): PatchOperation[] {
  const matches = alignedItems(from, to);
  if (matches === undefined) return [{ op: 'replace', path, value: to }];
  const ops: PatchOperation[] = [];
  let i = 0;
  let j = 0;
  let index = 0; // position in the array as the operations so far have left it
  for (const [mi, mj] of [...matches, [from.length, to.length] as const]) {
    const removed = from.slice(i, mi);
    const added = to.slice(j, mj);
    const paired = Math.min(removed.length, added.length);
    for (let k = 0; k < paired; k++) ops.push(...diffJson(removed[k], added[k], `${path}/${index++}`));
    for (let k = paired; k < removed.length; k++) ops.push({ op: 'remove', path: `${path}/${index}` });
    for (let k = paired; k < added.length; k++) ops.push({ op: 'add', path: `${path}/${index++}`, value: added[k] });
    // The matched item itself: the same container (volume, env entry…) under its name, changed inside or not.
    if (mi < from.length) ops.push(...diffJson(from[mi], to[mj], `${path}/${index}`));
    index++;
    i = mi + 1;
    j = mj + 1;
  }
  return ops;
}

/**
 * Items that stand for the same thing: two objects with the same string `name` (Kubernetes lists of containers,
 * volumes, env, ports are keyed by it), anything else when equal. Aligning on names keeps a container that gained
 * env variables in place, so the patch (and the YAML node it edits, with the user's comments) stays its own.
 *
 * Each item of both lists becomes one integer, the same for the same item, before anything is compared: the
 * alignment compares up to MAX_ALIGNMENT_CELLS pairs, and with a deep comparison per pair, 500 identical unnamed
 * init containers of a few KB (a 1 MB review posted to the webhook's port) kept it busy for many seconds, past the
 * API server's timeoutSeconds and with every other review waiting. An unnamed item's identity is its canonical JSON (sorted
 * keys), computed once; two items that only look alike to it still get a patch between them, never a wrong one.
 */
function itemIds(a: readonly unknown[], b: readonly unknown[]): [number[], number[]] {
  const ids = new Map<string, number>();
  const id = (item: unknown): number => {
    const key = isObject(item) && typeof item.name === 'string' ? `n${item.name}` : `v${canonicalJson(item)}`;
    let value = ids.get(key);
    if (value === undefined) {
      value = ids.size;
      ids.set(key, value);
    }
    return value;
  };
  return [a.map(id), b.map(id)];
}

function canonicalJson(value: unknown): string {
  return (
    JSON.stringify(value, (_key, v: unknown) =>
      isObject(v) && !Array.isArray(v)
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, v[k]]),
          )
        : v,
    ) ?? 'undefined'
  );
}

/**
 * Index pairs of the same items, in order: the common prefix and suffix, and between them a longest common
 * subsequence; undefined when the middle is too large to align (MAX_ALIGNMENT_CELLS).
 */
function alignedItems(itemsA: readonly unknown[], itemsB: readonly unknown[]): [number, number][] | undefined {
  const [a, b] = itemIds(itemsA, itemsB);
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  if ((endA - start) * (endB - start) > MAX_ALIGNMENT_CELLS) return undefined;
  const pairs: [number, number][] = [];
  for (let k = 0; k < start; k++) pairs.push([k, k]);
  for (const [x, y] of commonSubsequence(a.slice(start, endA), b.slice(start, endB)))
    pairs.push([x + start, y + start]);
  for (let k = 0; k < a.length - endA; k++) pairs.push([endA + k, endB + k]);
  return pairs;
}

/** Index pairs of a longest common subsequence of the same items (by id): O(n·m), so only on a bounded middle. */
function commonSubsequence(a: readonly number[], b: readonly number[]): [number, number][] {
  const n = a.length;
  const m = b.length;
  const table: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let x = n - 1; x >= 0; x--) {
    const row = table[x] as number[];
    const below = table[x + 1] as number[];
    for (let y = m - 1; y >= 0; y--) {
      row[y] = a[x] === b[y] ? (below[y + 1] as number) + 1 : Math.max(below[y] as number, row[y + 1] as number);
    }
  }
  const pairs: [number, number][] = [];
  let x = 0;
  let y = 0;
  while (x < n && y < m) {
    if (a[x] === b[y]) {
      pairs.push([x++, y++]);
    } else if ((table[x + 1]?.[y] ?? 0) >= (table[x]?.[y + 1] ?? 0)) {
      x++;
    } else {
      y++;
    }
  }
  return pairs;
}
