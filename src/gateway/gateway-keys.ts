// The key paths gateway.yaml allows, for the "did you mean …?" of an unknown key (the sidecar config's suggestion,
// config/key-suggestion.ts, over the gateway schema). Paths read as the sidecar's: `[]` marks a list item and
// `<key>` a map key (e.g. a route's claims), so keysAt never offers a map's free-form keys.
import { z } from 'zod';
import { keysAt } from '../config/key-suggestion.js';
import { gatewaySchema } from './gateway-schema.js';

interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
}

/** The keys gateway.yaml allows directly under `parent` (a zod issue path); [] when the place is unknown. */
export function gatewayKeysAt(parent: readonly PropertyKey[]): string[] {
  return keysAt(parent, gatewayKeyPaths());
}

let cache: readonly string[] | undefined;

/** Every leaf key path of the gateway schema (walked on the first unknown key only). */
export function gatewayKeyPaths(): readonly string[] {
  cache ??= leafPaths(z.toJSONSchema(gatewaySchema, { unrepresentable: 'any' }) as JsonSchema);
  return cache;
}

function leafPaths(root: JsonSchema): string[] {
  const paths: string[] = [];
  const walk = (schema: JsonSchema, path: string): void => {
    if (schema.type === 'object' && schema.properties !== undefined) {
      for (const [name, child] of Object.entries(schema.properties))
        walk(child, path === '' ? name : `${path}.${name}`);
    } else if (schema.type === 'object' && typeof schema.additionalProperties === 'object') {
      walk(schema.additionalProperties, `${path}.<key>`);
    } else if (schema.type === 'array' && schema.items?.type === 'object') {
      walk(schema.items, `${path}[]`);
    } else {
      paths.push(path);
    }
  };
  walk(root, '');
  return paths;
}
