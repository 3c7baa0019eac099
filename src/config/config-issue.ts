// One problem of a config file as every loader words it (sidecar.yaml, gateway.yaml, inject.yaml, a policy's cases
// table): the key path, then an unknown key with the keys allowed there and the nearest one, a refused map key with
// what the key schema expected, a missing key with what belongs there, or the value's problem in configIssueMessage's
// words. Pure. A key is missing when the parsed document has no such key in its map: zod's issue carries no input for
// a missing key, and its wording ("expected string, received undefined") is not something to match text against.
import type { z } from 'zod';
import { keyPath } from './key-path.js';
import { unknownKeysText } from './key-suggestion.js';

export interface IssueContext {
  /** What the schema was given: tells a missing key from a wrong value. */
  readonly data: unknown;
  /** The schema's key paths (walked only when a key is unknown). */
  readonly leafPaths: () => readonly string[];
  /** Where the allowed keys are written down, e.g. `see docs/gateway.md`: said after an unknown key. */
  readonly reference: string;
  /** Said after the key, e.g. ` (from MESHAUTH_CA_URL)` for a key the environment set; '' when none. */
  readonly origin?: (key: string) => string;
}

/** `inbound.port: expected a whole number from 1 to 65535, not the text "x"`: one line, without the file's name. */
export function describeConfigIssue(issue: z.core.$ZodIssue, context: IssueContext): string {
  const key = keyPath(issue.path);
  const origin = context.origin?.(key) ?? '';
  if (issue.code === 'unrecognized_keys') {
    const { names, allowedHere } = unknownKeysText(key, issue.path, issue.keys, context.leafPaths());
    return `${names}${origin}: unknown key${allowedHere} (${context.reference})`;
  }
  if (issue.code === 'invalid_key') {
    // zod reports a refused map key generically; the key schema's own message says what was expected.
    return `${key}${origin}: invalid key: ${issue.issues[0]?.message ?? issue.message}`;
  }
  const missing = missingKeyWanted(issue, context.data);
  if (missing !== undefined) return `${key}${origin}: required key is missing (expected ${missing})`;
  // A problem with the document itself (a list, a scalar) has no key to name.
  return `${key === '' ? '(top level)' : key}${origin}: ${issue.message}`;
}

/** A config file with many problems gets the first ones named (one fix often mends several), then a count. */
export const MAX_REPORTED_ISSUES = 5;

/**
 * One line per issue, each led by `source` (the file): the first `max`, then `(N more problems)` when there are
 * more.
 */
export function configProblemLines(
  source: string,
  issues: readonly z.core.$ZodIssue[],
  context: IssueContext,
  max = MAX_REPORTED_ISSUES,
): string[] {
  const lines = issues.slice(0, max).map((issue) => `${source}: ${describeConfigIssue(issue, context)}`);
  if (issues.length > max) lines.push(`(${issues.length - max} more problems)`);
  return lines;
}

const WANTED: Readonly<Record<string, string>> = {
  string: 'a string',
  array: 'a list',
  object: 'a map',
  record: 'a map',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
};

/**
 * What belongs at the issue's key when that key is absent from its map (`a string`, `allow, deny or reject`);
 * undefined when the key is there (its value is what is wrong) or the issue is of another kind.
 */
export function missingKeyWanted(issue: z.core.$ZodIssue, data: unknown): string | undefined {
  const name = issue.path.at(-1);
  const parent = valueAt(data, issue.path.slice(0, -1));
  if (name === undefined || typeof parent !== 'object' || parent === null || Array.isArray(parent)) return undefined;
  if (Object.hasOwn(parent, name)) return undefined;
  if (issue.code === 'invalid_value') return oneOf(issue.values.map(String));
  if (issue.code === 'invalid_type') return WANTED[issue.expected] ?? issue.expected;
  return undefined;
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let node = data;
  for (const part of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<PropertyKey, unknown>)[part];
  }
  return node;
}

/** `allow, deny or reject`. */
function oneOf(words: readonly string[]): string {
  return words.length < 2 ? (words[0] ?? '') : `${words.slice(0, -1).join(', ')} or ${words.at(-1)}`;
}
