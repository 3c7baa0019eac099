// A true/false setting. zod's own refusal of `tls12: yes` read "Invalid input: expected boolean, received string",
// which says neither what is accepted nor that YAML takes `yes` (and a quoted "true") as text.
import { z } from 'zod';

/** The schema of an optional-or-required true/false key; a missing key keeps zod's message (the loaders say so). */
export function booleanFlag() {
  return z.boolean({
    error: (issue) => (issue.input === undefined ? undefined : `expected true or false, not ${shown(issue.input)}`),
  });
}

function shown(value: unknown): string {
  if (typeof value === 'string') return `the text ${JSON.stringify(value.slice(0, 40))}`;
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'a map' : `the ${typeof value} ${String(value)}`;
}
