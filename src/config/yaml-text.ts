// Strict YAML for every config and policy file meshauth reads (sidecar, gateway, inject, policy): one rule set, one
// parse. Every YAML error and warning is a problem naming its line, and so is an alias without its anchor or one past
// yaml's expansion bound (toJS throws those). Not parse(): it reports an unresolved tag (`!!set`) as a process
// warning on stderr and loads the value anyway. parseDocument's loop written out (parseBoundedDocument), so that the
// parser's tokens are checked for depth and aliases (boundedTokens) before anything recurses or searches over them;
// `meshauth inject` reads its manifests (YAML 1.1) through the same loop.
import {
  Composer,
  CST,
  type Document,
  type DocumentOptions,
  isPair,
  isScalar,
  isSeq,
  Lexer,
  LineCounter,
  type ParseOptions,
  Parser,
  type SchemaOptions,
  visit,
  YAMLParseError,
} from 'yaml';
import { errorMessage, MeshauthError } from '../errors/index.js';
import { keyPath } from './key-path.js';
import { MAX_NESTING_DEPTH, NESTING_TOO_DEEP } from './nesting-depth.js';

export interface YamlProblem {
  /** 1-based; undefined when yaml did not say where (a toJS failure). */
  readonly line: number | undefined;
  /**
   * yaml's error code (`DUPLICATE_KEY`), or `NESTING_TOO_DEEP` or `TOO_MANY_ALIASES` (a bound, BoundProblem), or
   * `RESOURCE_EXHAUSTION` from toJS.
   */
  readonly code: string;
  /** One line. */
  readonly message: string;
  /** DUPLICATE_KEY: the path of the key given twice (`outbound.routes["a.b"]`), when it is a plain scalar. */
  readonly key?: string;
}

/** A bound the text breaks, found in the token stream before the document is built. */
export interface BoundProblem extends YamlProblem {
  readonly line: number;
  readonly code: 'NESTING_TOO_DEEP' | 'TOO_MANY_ALIASES';
}

export type StrictYaml =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly problems: readonly YamlProblem[] };

export type BoundedDocument =
  /** `document`: its errors and warnings are the caller's to report; `lines`: for their lines. */
  | { readonly ok: true; readonly document: Document.Parsed; readonly lines: LineCounter }
  | { readonly ok: false; readonly problem: BoundProblem };

/**
 * More aliases (`*name`) than this in one document are refused. yaml resolves each alias by a scan over every anchor
 * and alias before it, so the cost grows with the square of their number: 1 MiB of `- &aN 1` / `- *aN` lines
 * (48,000 aliases) held the event loop for 57 s in toJS on Node 20, where 100 aliases among 1 MiB of anchors took
 * 0.3 s. A config file or a policy uses a handful at most, a manifest a few per workload.
 */
export const MAX_YAML_ALIASES = 100;

/** The one wording of the refusal, after `<file>: line N: ` (config) or `<file>: YAML line N: ` (policy). */
export const TOO_MANY_ALIASES = `more than ${MAX_YAML_ALIASES} aliases (*name): expected at most ${MAX_YAML_ALIASES} in one document`;

const OPTIONS = {
  prettyErrors: false,
  uniqueKeys: true,
  // The YAML 1.1 tags yaml resolves by default (`!!binary` a Buffer, `!!set` a Set, `!!timestamp` a Date) are
  // values no schema here takes: refused as unresolved tags, with their line, rather than by a schema's "expected a
  // string" further on.
  resolveKnownTags: false,
} as const;

/** Thrown out of the token stream at the first bound broken; `offset` is where. */
class OutOfBounds {
  constructor(
    readonly code: BoundProblem['code'],
    readonly offset: number,
  ) {}
}

/** The value of `text` (null for an empty document), or every problem the parse met. Pure. */
export function readStrictYaml(text: string): StrictYaml {
  const parsed = parseBoundedDocument(text, OPTIONS);
  if (!parsed.ok) return { ok: false, problems: [parsed.problem] };
  const { document, lines } = parsed;
  const found = [...document.errors, ...document.warnings];
  if (found.length > 0) {
    const problems = found.map((e) => {
      const key = e.code === 'DUPLICATE_KEY' ? duplicateKeyAt(document, e.pos[0]) : undefined;
      return {
        line: lines.linePos(e.pos[0]).line,
        code: e.code,
        message: e.message.split('\n')[0] ?? '',
        ...(key === undefined ? {} : { key }),
      };
    });
    return { ok: false, problems };
  }
  try {
    return { ok: true, value: document.toJS({ maxAliasCount: 100 }) };
  } catch (error) {
    const message = errorMessage(error);
    return { ok: false, problems: [{ line: undefined, code: 'RESOURCE_EXHAUSTION', message }] };
  }
}

/**
 * The path of the scalar key that starts at `offset` (where yaml reports a key given twice), or undefined. yaml's
 * own message ("Map keys must be unique") names no key: in a long file, the line alone left the reader to find which
 * of the keys near it was meant, and under which parent.
 */
function duplicateKeyAt(document: Document.Parsed, offset: number): string | undefined {
  let found: string | undefined;
  visit(document, {
    Pair(_, pair, path) {
      if (!isScalar(pair.key) || pair.key.range?.[0] !== offset) return undefined;
      const parts: PropertyKey[] = [];
      for (const [index, node] of path.entries()) {
        if (isPair(node)) parts.push(isScalar(node.key) ? String(node.key.value) : '?');
        else if (isSeq(node)) parts.push(node.items.indexOf(path[index + 1] as never));
      }
      found = keyPath([...parts, String(pair.key.value)]);
      return visit.BREAK;
    },
  });
  return found;
}

/**
 * parseDocument(text, options) within the bounds (MAX_NESTING_DEPTH, MAX_YAML_ALIASES), or the first bound broken
 * with its line. A second document is an error of the document (MULTIPLE_DOCS). Pure.
 */
export function parseBoundedDocument(
  text: string,
  options: DocumentOptions & ParseOptions & SchemaOptions,
): BoundedDocument {
  const lines = new LineCounter();
  let document: Document.Parsed | undefined;
  try {
    for (const next of new Composer(options).compose(boundedTokens(text, lines), true, text.length)) {
      if (document === undefined) {
        document = next;
        continue;
      }
      const where = next.range.slice(0, 2) as [number, number];
      document.errors.push(new YAMLParseError(where, 'MULTIPLE_DOCS', 'Source contains more than one document'));
      break;
    }
  } catch (error) {
    if (!(error instanceof OutOfBounds)) throw error;
    const line = lines.linePos(error.offset).line;
    const message = error.code === 'NESTING_TOO_DEEP' ? NESTING_TOO_DEEP : TOO_MANY_ALIASES;
    return { ok: false, problem: { line, code: error.code, message } };
  }
  // compose(…, forceDoc) gives one document, empty text included
  if (document === undefined) throw new Error('yaml composed no document');
  return { ok: true, document, lines };
}

/**
 * The parser's tokens, refused at the first collection that opens past MAX_NESTING_DEPTH: the parser keeps the open
 * collections on its own stack (no recursion), so this stops `[[[…` within the first levels of a file, before the
 * composer and toJS recurse over it. Block maps and lists by indentation, `- - -` and flow `[`/`{` all count.
 * Refused too at the alias past MAX_YAML_ALIASES, before the composer resolves any.
 */
function* boundedTokens(text: string, lines: LineCounter) {
  const parser = new Parser(lines.addNewLine);
  lines.addNewLine(0); // what Parser.parse() does first
  let aliases = 0;
  let scalarText = false;
  for (const lexeme of new Lexer().lex(text)) {
    // The lexeme after the SCALAR marker is a scalar's text, whatever its first character.
    if (!scalarText && CST.tokenType(lexeme) === 'alias' && ++aliases > MAX_YAML_ALIASES) {
      throw new OutOfBounds('TOO_MANY_ALIASES', parser.offset);
    }
    scalarText = lexeme === CST.SCALAR;
    yield* parser.next(lexeme);
    if (parser.stack.length > MAX_NESTING_DEPTH && collectionsOn(parser.stack) > MAX_NESTING_DEPTH) {
      throw new OutOfBounds('NESTING_TOO_DEEP', parser.offset);
    }
  }
  yield* parser.end();
}

function collectionsOn(stack: Parser['stack']): number {
  let count = 0;
  for (const token of stack) {
    if (token.type === 'block-map' || token.type === 'block-seq' || token.type === 'flow-collection') count++;
  }
  return count;
}

/**
 * The JS value of `text` (null for an empty document); MESHAUTH_ERR_CONFIG_INVALID otherwise, reason `config_yaml`,
 * or `config_too_deep` / `config_too_many_aliases` for a bound.
 */
export function parseYamlText(text: string, source: string): unknown {
  const read = readStrictYaml(text);
  if (read.ok) return read.value;
  const problem = read.problems[0] as YamlProblem;
  const where = problem.line === undefined ? '' : ` line ${problem.line}:`;
  const bound = BOUND_REASONS.get(problem.code);
  const what =
    bound !== undefined
      ? problem.message
      : problem.line === undefined
        ? `not valid YAML (${problem.message})`
        : problem.key !== undefined
          ? `not valid YAML (${problem.code}): ${problem.key} is given twice, expected each key once in its map`
          : `not valid YAML (${problem.code})`;
  throw new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', `${source}:${where} ${what}`, {
    reason: bound ?? 'config_yaml',
    detail: { file: source, ...(problem.line === undefined ? {} : { line: problem.line }) },
  });
}

const BOUND_REASONS: ReadonlyMap<string, string> = new Map([
  ['NESTING_TOO_DEEP', 'config_too_deep'],
  ['TOO_MANY_ALIASES', 'config_too_many_aliases'],
]);

/** One problem as the policy and cases files list it: `YAML line N: <what>`. */
export function yamlProblemText(problem: YamlProblem): string {
  return problem.line === undefined ? `YAML ${problem.message}` : `YAML line ${problem.line}: ${problem.message}`;
}
