// Small accessors for Kubernetes objects held as parsed JSON (the injection works on what YAML/JSON parsing
// gives, without a typed model: unknown fields must survive untouched). Pure.

export type JsonObject = { [key: string]: unknown };

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `parent`'s own `key`, never an inherited one. The keys are often the pod creator's (annotation JSON, container
 * names): `__proto__` read through an index is Object.prototype, which a write through the result would change for
 * the whole process.
 */
function own(parent: JsonObject | undefined, key: string): unknown {
  return parent !== undefined && Object.hasOwn(parent, key) ? parent[key] : undefined;
}

export function objectAt(parent: JsonObject, key: string): JsonObject | undefined {
  const value = own(parent, key);
  return isObject(value) ? value : undefined;
}

/** The object at `path` below `parent` (`parent` itself for []), or undefined where a step is not an object. */
export function objectAtPath(parent: JsonObject, path: readonly string[]): JsonObject | undefined {
  let node: JsonObject | undefined = parent;
  for (const key of path) node = node === undefined ? undefined : objectAt(node, key);
  return node;
}

/** The object under `key`, created (and reported through `created`) when absent. */
export function ensureObject(parent: JsonObject, key: string, created?: () => void): JsonObject {
  const value = own(parent, key);
  if (isObject(value)) return value;
  const fresh: JsonObject = {};
  parent[key] = fresh;
  created?.();
  return fresh;
}

export function arrayAt(parent: JsonObject, key: string): unknown[] | undefined {
  const value = own(parent, key);
  return Array.isArray(value) ? value : undefined;
}

export function ensureArray(parent: JsonObject, key: string, created?: () => void): unknown[] {
  const value = own(parent, key);
  if (Array.isArray(value)) return value;
  const fresh: unknown[] = [];
  parent[key] = fresh;
  created?.();
  return fresh;
}

export function stringAt(parent: JsonObject | undefined, key: string): string | undefined {
  const value = own(parent, key);
  return typeof value === 'string' ? value : undefined;
}

/** Entries of a list that are objects with a string `name` (containers, volumes, env, ports). */
export function named(list: readonly unknown[] | undefined): JsonObject[] {
  return (list ?? []).filter((item): item is JsonObject => isObject(item) && typeof item.name === 'string');
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b) || a === b) return true; // Object.is: a NaN (YAML `.nan`) equals itself
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((item, i) => deepEqual(item, b[i]));
  }
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
  }
  return false;
}
