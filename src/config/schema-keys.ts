// The key paths a zod object schema allows (walked through its JSON Schema), in key-suggestion.ts's form: `[]`
// marks a list item, `<key>` a map key. What the policy and inject.yaml loaders read to suggest a misspelt key.
import { z } from 'zod';

interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
  anyOf?: JsonSchema[];
}

/** Every leaf key path of `schema`; a key that may be one of several shapes is walked in each of them. */
export function schemaLeafPaths(schema: z.ZodType): string[] {
  const paths = new Set<string>();
  const walk = (node: JsonSchema, path: string) => {
    if (node.anyOf !== undefined) {
      for (const branch of node.anyOf) walk(branch, path);
      return;
    }
    if (node.type === 'object' && node.properties !== undefined) {
      for (const [name, child] of Object.entries(node.properties)) walk(child, path === '' ? name : `${path}.${name}`);
      return;
    }
    if (node.type === 'object' && typeof node.additionalProperties === 'object') {
      walk(node.additionalProperties, `${path}.<key>`);
      return;
    }
    if (node.type === 'array' && node.items !== undefined) {
      walk(node.items, `${path}[]`);
      return;
    }
    if (path !== '') paths.add(path);
  };
  // Both views, the input one being what users write: a value whose schema preprocesses its input (a gateway route's
  // claim conditions) shows its keys only in the output one.
  for (const io of ['input', 'output'] as const) {
    walk(z.toJSONSchema(schema, { unrepresentable: 'any', io }) as JsonSchema, '');
  }
  return [...paths];
}
