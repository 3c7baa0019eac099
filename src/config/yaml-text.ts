// Strict YAML for every config and policy file meshauth reads (sidecar, gateway, inject, policy): one rule set, one
// parse. Every YAML error and warning is a problem naming its line, and so is an alias without its anchor or one past
// yaml's expansion bound (toJS throws those). Not parse(): it reports an unresolved tag (`!!set`) as a process
// warning on stderr and loads the value anyway. parseDocument's loop written out, so that the parser's tokens are
// checked for depth (boundedTokens) before anything recurses over them.
import { Composer, type Document, Lexer, LineCounter, Parser, YAMLParseError } from 'yaml';
import { MeshauthError } from '../errors/index.js';
import { MAX_NESTING_DEPTH, NESTING_TOO_DEEP } from './nesting-depth.js';

export interface YamlProblem {
  /** 1-based; undefined when yaml did not say where (a toJS failure). */
  readonly line: number | undefined;
  /** yaml's error code (`DUPLICATE_KEY`), or `NESTING_TOO_DEEP`, or `RESOURCE_EXHAUSTION` from toJS. */
  readonly code: string;
  /** One line. */
  readonly message: string;
}

export type StrictYaml =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly problems: readonly YamlProblem[] };

const OPTIONS = {
  prettyErrors: false,
  uniqueKeys: true,
  // The YAML 1.1 tags yaml resolves by default (`!!binary` a Buffer, `!!set` a Set, `!!timestamp` a Date) are
  // values no schema here takes: refused as unresolved tags, with their line, rather than by a schema's "expected a
  // string" further on.
  resolveKnownTags: false,
} as const;

/** Thrown out of the token stream at the first collection past MAX_NESTING_DEPTH; `offset` is where it opened. */
class TooDeep {
  constructor(readonly offset: number) {}
}

/** The value of `text` (null for an empty document), or every problem the parse met. Pure. */
export function readStrictYaml(text: string): StrictYaml {
  const lines = new LineCounter();
  let document: Document.Parsed | undefined;
  try {
    for (const next of new Composer(OPTIONS).compose(boundedTokens(text, lines), true, text.length)) {
      if (document === undefined) {
        document = next;
        continue;
      }
      const where = next.range.slice(0, 2) as [number, number];
      document.errors.push(new YAMLParseError(where, 'MULTIPLE_DOCS', 'Source contains more than one document'));
      break;
    }
  } catch (error) {
    if (!(error instanceof TooDeep)) throw error;
    const line = lines.linePos(error.offset).line;
    return { ok: false, problems: [{ line, code: 'NESTING_TOO_DEEP', message: NESTING_TOO_DEEP }] };
  }
  if (document === undefined) return { ok: true, value: null }; // compose(…, forceDoc) always gives one
  const found = [...document.errors, ...document.warnings];
  if (found.length > 0) {
    const problems = found.map((e) => ({
      line: lines.linePos(e.pos[0]).line,
      code: e.code,
      message: e.message.split('\n')[0] ?? '',
    }));
    return { ok: false, problems };
  }
  try {
    return { ok: true, value: document.toJS({ maxAliasCount: 100 }) };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { ok: false, problems: [{ line: undefined, code: 'RESOURCE_EXHAUSTION', message }] };
  }
}

/**
 * The parser's tokens, refused at the first collection that opens past MAX_NESTING_DEPTH: the parser keeps the open
 * collections on its own stack (no recursion), so this stops `[[[…` within the first levels of a file, before the
 * composer and toJS recurse over it. Block maps and lists by indentation, `- - -` and flow `[`/`{` all count.
 */
function* boundedTokens(text: string, lines: LineCounter) {
  const parser = new Parser(lines.addNewLine);
  lines.addNewLine(0); // what Parser.parse() does first
  for (const lexeme of new Lexer().lex(text)) {
    yield* parser.next(lexeme);
    if (parser.stack.length > MAX_NESTING_DEPTH && collectionsOn(parser.stack) > MAX_NESTING_DEPTH) {
      throw new TooDeep(parser.offset);
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

/** The JS value of `text` (null for an empty document); MESHAUTH_ERR_CONFIG_INVALID (`config_yaml`) otherwise. */
export function parseYamlText(text: string, source: string): unknown {
  const read = readStrictYaml(text);
  if (read.ok) return read.value;
  const problem = read.problems[0] as YamlProblem;
  const where = problem.line === undefined ? '' : ` line ${problem.line}:`;
  const what =
    problem.code === 'NESTING_TOO_DEEP'
      ? problem.message
      : problem.line === undefined
        ? `not valid YAML (${problem.message})`
        : `not valid YAML (${problem.code})`;
  throw new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', `${source}:${where} ${what}`, {
    reason: problem.code === 'NESTING_TOO_DEEP' ? 'config_too_deep' : 'config_yaml',
    detail: { file: source, ...(problem.line === undefined ? {} : { line: problem.line }) },
  });
}

/** One problem as the policy and cases files list it: `YAML line N: <what>`. */
export function yamlProblemText(problem: YamlProblem): string {
  return problem.line === undefined ? `YAML ${problem.message}` : `YAML line ${problem.line}: ${problem.message}`;
}
