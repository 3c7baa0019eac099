// How deep maps and lists may sit inside each other in a config or policy file, and the check of a JSON text.
// The YAML parser and toJS recurse once per level: `[[[…]]]` a few thousand deep overflowed the stack (on Node 20
// V8 then aborted the process while compiling a regular expression, which no catch can stop), and 4 MB of it held
// the event loop for over 20 s. The deepest real file (a policy rule's `when.user.claims`) nests under 10 levels.

/** Deeper is refused before anything recurses over the text. */
export const MAX_NESTING_DEPTH = 64;

/** The one wording of the refusal, after `<file>: line N: ` (config) or `<file>: YAML line N: ` (policy). */
export const NESTING_TOO_DEEP = `nested deeper than ${MAX_NESTING_DEPTH} levels: expected at most ${MAX_NESTING_DEPTH} maps and lists inside each other`;

/**
 * The index of the first `[` or `{` past MAX_NESTING_DEPTH in a JSON text, or undefined. Exact for valid JSON (a
 * bracket outside a string is structure); on invalid JSON, JSON.parse refuses the text anyway.
 */
export function jsonTooDeepAt(text: string): number | undefined {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
    } else if (c === '[' || c === '{') {
      depth++;
      if (depth > MAX_NESTING_DEPTH) return i;
    } else if (c === ']' || c === '}') {
      depth--;
    }
  }
  return undefined;
}
