// The set of keys each Kubernetes type allows, read from kubernetes-models' type declarations. The package's
// compiled OpenAPI validators do not close objects (an unknown key such as `secutiryContext` passes them, and the
// API server would drop it silently), so the unknown-key check walks an object against these shapes instead.
// Only the `.d.ts` files are read: they are generated from the same OpenAPI document as the validators.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const MODELS_DIR = dirname(require.resolve('kubernetes-models'));
const APIMACHINERY_DIR = dirname(
  createRequire(join(MODELS_DIR, 'index.js')).resolve('@kubernetes-models/apimachinery'),
);

/** What a value at some place in an object must look like, as far as keys go. */
export type Shape =
  | { readonly kind: 'leaf' }
  | { readonly kind: 'object'; readonly file: string }
  | { readonly kind: 'array'; readonly of: Shape }
  | { readonly kind: 'map'; readonly of: Shape };

export interface ObjectShape {
  readonly props: ReadonlyMap<string, Shape>;
  /** No declared properties (free-form such as FieldsV1, RawExtension, JSON): any key is allowed. */
  readonly open: boolean;
}

const LEAF: Shape = { kind: 'leaf' };
const cache = new Map<string, ObjectShape>();

/** The `.d.ts` of a model module, or undefined when kubernetes-models has no such apiVersion/kind. */
export function declarationFileFor(apiVersion: string, kind: string): string | undefined {
  // Folders mirror apiVersion: `v1/Pod`, `apps/v1/Deployment`, `policy/v1/PodDisruptionBudget`.
  if (!/^([a-z0-9.-]+\/)?v\d+[a-z0-9]*$/.test(apiVersion) || !/^[A-Z][A-Za-z0-9]*$/.test(kind)) return undefined;
  const file = join(MODELS_DIR, apiVersion, `${kind}.d.ts`);
  try {
    readFileSync(file);
    return file;
  } catch {
    return undefined;
  }
}

/** The module specifier of the model class (for `require`), matching declarationFileFor. */
export function modelModuleFor(apiVersion: string, kind: string): string {
  return `kubernetes-models/${apiVersion}/${kind}`;
}

export function objectShape(file: string): ObjectShape {
  const cached = cache.get(file);
  if (cached) return cached;
  const shape = parseDeclaration(file);
  cache.set(file, shape);
  return shape;
}

function parseDeclaration(file: string): ObjectShape {
  const text = readFileSync(file, 'utf8');
  const imports = new Map<string, string>();
  for (const match of text.matchAll(/^import \{ ([^}]+) \} from "([^"]+)";$/gm)) {
    const target = resolveImport(file, match[2] ?? '');
    if (target === undefined) continue;
    for (const name of (match[1] ?? '').split(',')) imports.set(name.trim(), target);
  }
  const head = /^export interface (\w+)(?: extends [\w, ]+)? \{$/m.exec(text);
  // A type alias (IntOrString, Quantity, Time) is a scalar: nothing below it has keys.
  if (!head) return { props: new Map(), open: true };
  imports.set(head[1] ?? '', file);
  const body = text.slice(head.index + head[0].length, text.indexOf('\n}', head.index));
  const lines = body.split('\n').filter((line) => !/^\s*(\/\*\*|\*)/.test(line));
  const props = new Map<string, Shape>();
  for (let i = 0; i < lines.length; i++) {
    const match = /^ {4}"([^"]+)"\??: (.+)$/.exec(lines[i] ?? '');
    if (!match) continue;
    const name = match[1] ?? '';
    const type = match[2] ?? '';
    if (type === '{') {
      // A map: `{ [key: string]: T; }` over the following lines.
      const entry = /^\s+\[key: string\]: (.+);$/.exec(lines[i + 1] ?? '');
      props.set(name, { kind: 'map', of: entry ? parseType(entry[1] ?? '', imports) : LEAF });
    } else {
      props.set(name, parseType(type.replace(/;$/, ''), imports));
    }
  }
  return { props, open: props.size === 0 };
}

function parseType(type: string, imports: ReadonlyMap<string, string>): Shape {
  const array = /^Array<(.+)>$/.exec(type);
  if (array) return { kind: 'array', of: parseType(array[1] ?? '', imports) };
  const file = imports.get(type);
  return file === undefined ? LEAF : { kind: 'object', file };
}

function resolveImport(from: string, specifier: string): string | undefined {
  if (specifier.startsWith('.')) return join(dirname(from), `${specifier}.d.ts`);
  const prefix = '@kubernetes-models/apimachinery/';
  if (specifier.startsWith(prefix)) return join(APIMACHINERY_DIR, `${specifier.slice(prefix.length)}.d.ts`);
  return undefined;
}

/** Every key present in `value` that its shape does not declare, as `path: unknown key "k"` lines. */
export function unknownKeys(value: unknown, shape: Shape, path: string): string[] {
  const problems: string[] = [];
  walk(value, shape, path, problems);
  return problems;
}

function walk(value: unknown, shape: Shape, path: string, problems: string[]): void {
  if (shape.kind === 'leaf' || value === null || typeof value !== 'object') return;
  if (shape.kind === 'array') {
    if (Array.isArray(value)) {
      for (const [i, item] of value.entries()) walk(item, shape.of, `${path}[${i}]`, problems);
    }
    return;
  }
  if (Array.isArray(value)) return;
  const record = value as Record<string, unknown>;
  if (shape.kind === 'map') {
    for (const [key, item] of Object.entries(record)) walk(item, shape.of, `${path}.${key}`, problems);
    return;
  }
  const object = objectShape(shape.file);
  if (object.open) return;
  for (const [key, item] of Object.entries(record)) {
    const prop = object.props.get(key);
    if (prop === undefined) {
      problems.push(`${path || '.'}: unknown key "${key}" (allowed: ${[...object.props.keys()].join(', ')})`);
    } else {
      walk(item, prop, path ? `${path}.${key}` : key, problems);
    }
  }
}
