// The wording of a wrong-type or out-of-range config value, built from the zod issue alone: zod's own read
// "Invalid input: expected number, received string" or "Too small: expected number to be >0", which names neither
// the accepted range nor what was written. Passed as the parse-wide error map, so a message a schema sets itself
// (booleanFlag, formatted strings, refinements) still wins; a missing key (no input) keeps zod's text for the loaders.
import type { z } from 'zod';
import { closestKey } from './key-suggestion.js';

const SHOWN_TEXT_CHARS = 40;
const LIST = 'a list (YAML [a, b] or one item per "- " line)';
const MAP = 'a map (one "key: value" per line)';

type RawIssue = z.core.$ZodRawIssue;
type Bound = { readonly value: number; readonly inclusive: boolean };

/** The parse-wide error map of every config and policy loader (sidecar, gateway, inject, policy, cases); undefined leaves zod's message. */
export function configIssueMessage(issue: RawIssue): string | undefined {
  const input = issue.input;
  if (input === undefined) return undefined;
  switch (issue.code) {
    case 'invalid_type':
      return wrongType(issue, input);
    case 'too_small':
    case 'too_big':
    case 'not_multiple_of':
      if (isNumberSchema(issue)) return `expected ${numberWanted(issue)}, not ${shown(input)}`;
      return issue.code === 'not_multiple_of' ? undefined : wrongSize(issue, input);
    case 'invalid_value':
      return notOneOf(issue.values, input);
    default:
      return undefined;
  }
}

/** An enum's value misspelt: zod says "Invalid option: expected one of "allow"|"deny""; say what was written too. */
function notOneOf(values: readonly unknown[], input: unknown): string | undefined {
  const words = values.filter((v): v is string => typeof v === 'string');
  if (words.length === 0 || words.length !== values.length) return undefined;
  const near = typeof input === 'string' ? closestKey(input, words) : undefined;
  const list = words.length === 1 ? words[0] : `${words.slice(0, -1).join(', ')} or ${words.at(-1)}`;
  return `expected ${list}, not ${shown(input)}${near === undefined ? '' : ` (did you mean ${near}?)`}`;
}

function wrongType(issue: RawIssue & { code: 'invalid_type' }, input: unknown): string | undefined {
  switch (issue.expected) {
    case 'number':
    case 'int':
      return `expected ${numberWanted(issue)}, not ${shown(input)}${quotedNumber(input) ? ' (write it without quotes)' : ''}`;
    case 'array':
      return `expected ${LIST}, not ${shown(input)}`;
    case 'object':
    case 'record':
    case 'map':
      return `expected ${MAP}, not ${shown(input)}`;
    case 'string':
      return `expected a string, not ${shown(input)}`;
    case 'boolean':
      return `expected true or false, not ${shown(input)}`;
    default:
      return undefined;
  }
}

/** A list or a string outside its length bounds (a number's bounds are worded by numberWanted). */
function wrongSize(issue: RawIssue & { code: 'too_small' | 'too_big' }, input: unknown): string | undefined {
  const bound = Number(issue.code === 'too_small' ? issue.minimum : issue.maximum);
  const atLeast = issue.code === 'too_small';
  if (issue.origin === 'array' && Array.isArray(input)) {
    const wanted = `${atLeast ? 'at least' : 'at most'} ${plural(bound, 'item')}`;
    return `expected a list of ${wanted}, not ${input.length === 0 ? 'an empty list' : `a list of ${plural(input.length, 'item')}`}`;
  }
  if (issue.origin === 'string' && typeof input === 'string') {
    if (atLeast && bound === 1) return 'expected a non-empty string, not an empty one';
    const wanted = `${atLeast ? 'at least' : 'at most'} ${plural(bound, 'character')}`;
    return `expected a string of ${wanted}, not ${shown(input)} (${plural(input.length, 'character')})`;
  }
  return undefined;
}

/**
 * "a whole number greater than 0", "a whole number from 1 to 65535": the number schema's own checks, read from the
 * schema that raised the issue (zod stamps it on every issue of that schema and its checks), so a value of the
 * wrong type is told the whole range at once rather than one bound per attempt.
 */
function numberWanted(issue: RawIssue): string {
  const checks = numberChecks(issue);
  let whole = checks.some(
    (def) => def.check === 'number_format' && def.format !== 'float32' && def.format !== 'float64',
  );
  let lower: Bound | undefined;
  let upper: Bound | undefined;
  const multiples: number[] = [];
  for (const def of checks) {
    if (def.check === 'greater_than')
      lower = tighter(lower, { value: Number(def.value), inclusive: def.inclusive === true }, 1);
    if (def.check === 'less_than')
      upper = tighter(upper, { value: Number(def.value), inclusive: def.inclusive === true }, -1);
    if (def.check === 'multiple_of') multiples.push(Number(def.value));
  }
  // The issue's own bound counts too: the whole-number format's safe range is not among the checks.
  if (issue.code === 'too_small')
    lower = tighter(lower, { value: Number(issue.minimum), inclusive: !!issue.inclusive }, 1);
  if (issue.code === 'too_big')
    upper = tighter(upper, { value: Number(issue.maximum), inclusive: !!issue.inclusive }, -1);
  if (issue.code === 'not_multiple_of' && !multiples.includes(Number(issue.divisor)))
    multiples.push(Number(issue.divisor));
  if (issue.code === 'invalid_type' && issue.expected === 'int') whole = true;
  const parts = [rangeText(lower, upper), ...multiples.map((m) => `a multiple of ${m}`)].filter((p) => p !== '');
  return `${whole ? 'a whole number' : 'a number'}${parts.length === 0 ? '' : ` ${parts.join(' and ')}`}`;
}

function rangeText(lower: Bound | undefined, upper: Bound | undefined): string {
  if (lower?.inclusive && upper?.inclusive) return `from ${lower.value} to ${upper.value}`;
  if (lower?.inclusive && upper === undefined) return `of ${lower.value} or more`;
  if (upper?.inclusive && lower === undefined) return `of ${upper.value} or less`;
  const low = lower === undefined ? '' : lower.inclusive ? `at least ${lower.value}` : `greater than ${lower.value}`;
  const high = upper === undefined ? '' : upper.inclusive ? `at most ${upper.value}` : `less than ${upper.value}`;
  return [low, high].filter((p) => p !== '').join(' and ');
}

/** The stricter of two bounds; `direction` 1 for a lower bound (higher is stricter), -1 for an upper one. */
function tighter(current: Bound | undefined, next: Bound, direction: 1 | -1): Bound {
  if (current === undefined) return next;
  const diff = (next.value - current.value) * direction;
  if (diff !== 0) return diff > 0 ? next : current;
  return next.inclusive ? current : next;
}

type CheckDef = {
  readonly check?: string;
  readonly format?: string;
  readonly value?: unknown;
  readonly inclusive?: boolean;
};

function numberChecks(issue: RawIssue): readonly CheckDef[] {
  const schema = owningSchema(issue);
  if (schema?._zod.def.type !== 'number') return [];
  return (schema._zod.def.checks ?? []).map((check) => check._zod.def as CheckDef);
}

function isNumberSchema(issue: RawIssue): boolean {
  if (issue.code === 'too_small' || issue.code === 'too_big') {
    if (issue.origin === 'number' || issue.origin === 'int') return true;
  }
  return owningSchema(issue)?._zod.def.type === 'number';
}

function owningSchema(issue: RawIssue): z.core.$ZodType | undefined {
  if (issue.schema !== undefined) return issue.schema;
  const inst = issue.inst;
  // A check (int(), min()) is not the schema: its def may still carry a `type`, so ask its traits.
  const internals = inst?._zod;
  return internals !== undefined && 'traits' in internals && internals.traits.has('$ZodType')
    ? (inst as z.core.$ZodType)
    : undefined;
}

/** YAML `port: "80"`: a number written in quotes is text. */
function quotedNumber(input: unknown): boolean {
  return typeof input === 'string' && input.trim() !== '' && Number.isFinite(Number(input));
}

/** What was written, echoed when short: text quoted (cut at 40 characters), numbers and true/false as written. */
function shown(value: unknown): string {
  if (typeof value === 'string') {
    const cut = value.length > SHOWN_TEXT_CHARS ? `${value.slice(0, SHOWN_TEXT_CHARS)}…` : value;
    return `the text ${JSON.stringify(cut)}`;
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === null) return 'an empty value (null)';
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : 'a list';
  return typeof value === 'object' ? 'a map' : `a ${typeof value}`;
}

/** `1 item`, `2 items`: a count in a message. */
export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
