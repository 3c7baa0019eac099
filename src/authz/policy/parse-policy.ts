// Policy text → validated PolicyDocument. Pure: the caller reads the file. The problems are reported (the first
// MAX_LISTED_PROBLEMS, then a count), each naming the file, the rule (name and index) and the field, and what was
// expected.
import type { z } from 'zod';
import { missingKeyWanted } from '../../config/config-issue.js';
import { configIssueMessage } from '../../config/issue-message.js';
import { closestKey, keysAt } from '../../config/key-suggestion.js';
import { listedProblems, omittedProblemsText } from '../../config/listed-problems.js';
import { schemaLeafPaths } from '../../config/schema-keys.js';
import { readStrictYaml, yamlProblemText } from '../../config/yaml-text.js';
import { MeshauthError } from '../../errors/index.js';
import { foreignIdProblems } from './foreign-ids.js';
import { type PolicyDocument, policySchema } from './schema.js';

export interface PolicyProblem {
  /** e.g. `rules[2] "orders-read"`, or '' for top-level fields. */
  readonly rule: string;
  /** e.g. `to.paths[0]`. */
  readonly field: string;
  readonly message: string;
}

/**
 * Parses and validates; throws MESHAUTH_ERR_POLICY_INVALID listing the problems (detail.problems: the first
 * MAX_LISTED_PROBLEMS, then one that counts the rest, also in detail.omitted). With
 * `trustDomain` (the mesh's, when the caller knows it), a condition on another trust domain is a problem too.
 */
export function parsePolicy(text: string, file: string, trustDomain?: string): PolicyDocument {
  // The config files' strict YAML (config/yaml-text.ts): duplicate keys, unresolved tags (yaml loads such a value
  // anyway and reports it on stderr), more than one document, an alias past the expansion bound and nesting past
  // MAX_NESTING_DEPTH are each a problem with its line.
  const read = readStrictYaml(text);
  if (!read.ok) {
    const problems = read.problems.map((p) => ({ rule: '', field: '', message: yamlProblemText(p) }));
    throw invalidPolicy(file, problems);
  }
  const data = read.value;
  const shape = topLevelProblem(data);
  if (shape !== undefined) throw invalidPolicy(file, [{ rule: '', field: '', message: shape }]);
  const result = policySchema.safeParse(data, { error: configIssueMessage });
  if (!result.success) {
    const { problems, omitted } = problemsOf(result.error.issues, data);
    throw invalidPolicy(file, problems, casesFileHint(data, file), omitted);
  }
  const foreign = trustDomain === undefined ? [] : foreignIdProblems(result.data, trustDomain);
  if (foreign.length > 0) throw invalidPolicy(file, foreign);
  return result.data;
}

/** The problems of the first issues (the rest are only counted: a 520,000-item list is as many issues). */
function problemsOf(
  issues: readonly z.core.$ZodIssue[],
  data: unknown,
): { readonly problems: PolicyProblem[]; readonly omitted: number } {
  const flat = flattenUnions(issues);
  const { listed, omitted } = listedProblems(flat);
  const problems = listed.map((issue) => {
    const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
    let rule = '';
    let fieldPath = path;
    if (path[0] === 'rules' && typeof path[1] === 'number') {
      rule = `rules[${path[1]}]${ruleNameAt(data, path[1])}`;
      fieldPath = path.slice(2);
    }
    let message = issue.message;
    const missing = missingKeyWanted(issue, data);
    if (missing !== undefined) message = `required field is missing (expected ${missing})`;
    if (issue.code === 'unrecognized_keys') {
      const allowed = keysAt(issue.path, policyLeafPaths());
      const named = issue.keys.map((k) => {
        const near = closestKey(k, allowed);
        return `"${k}"${near === undefined ? '' : ` (did you mean "${near}"?)`}`;
      });
      message = `unknown field${issue.keys.length > 1 ? 's' : ''} ${named.join(', ')}`;
    }
    return { rule, field: formatPath(fieldPath), message };
  });
  return { problems, omitted };
}

const POLICY_SHAPE = 'apiVersion: meshauth.dev/v1, kind: Policy and rules';

/** An empty file or a top level that is not a mapping: zod's "expected object, received null" said neither. */
function topLevelProblem(data: unknown): string | undefined {
  if (data === null || data === undefined) return `the file is empty: expected a policy with ${POLICY_SHAPE}`;
  if (typeof data !== 'object' || Array.isArray(data)) {
    const kind = Array.isArray(data) ? 'a list' : `a ${typeof data}`;
    return `expected a mapping with ${POLICY_SHAPE} at the top level, not ${kind}`;
  }
  return undefined;
}

/**
 * A cases table given where a policy belongs (`policy validate x.cases.yaml`) fails on every one of its keys, which
 * does not say what the file is: one line does, next to the problems.
 */
function casesFileHint(data: unknown, file: string): string | undefined {
  if (typeof data !== 'object' || data === null || !Object.hasOwn(data, 'cases')) return undefined;
  return `this looks like a cases file: run it with \`meshauth policy test <policy file> --cases ${file}\``;
}

let leafPathCache: readonly string[] | undefined;

/** The policy schema's key paths (walked on the first unknown field only). */
function policyLeafPaths(): readonly string[] {
  leafPathCache ??= schemaLeafPaths(policySchema);
  return leafPathCache;
}

/**
 * `time` and `chain.startsWith` accept one value or a list. When neither fits, report the issues of the branch
 * the input was meant for (the one whose root type matched) rather than a bare "invalid input".
 */
function flattenUnions(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  return issues.flatMap((issue) => {
    if (issue.code !== 'invalid_union' || issue.errors.length === 0) return [issue];
    const branch = issue.errors.find((b) => !b.some((i) => i.code === 'invalid_type' && i.path.length === 0));
    if (branch === undefined) return [issue];
    return flattenUnions(branch.map((i) => ({ ...i, path: [...issue.path, ...i.path] })));
  });
}

function ruleNameAt(data: unknown, index: number): string {
  if (typeof data !== 'object' || data === null) return '';
  const rules = (data as { rules?: unknown }).rules;
  if (!Array.isArray(rules)) return '';
  const rule: unknown = rules[index];
  if (typeof rule !== 'object' || rule === null) return '';
  const name = (rule as { name?: unknown }).name;
  return typeof name === 'string' ? ` "${name.slice(0, 128)}"` : '';
}

function formatPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out;
}

export function formatProblem(file: string, problem: PolicyProblem): string {
  const where = [problem.rule, problem.field].filter((s) => s !== '').join(' ');
  return `${file}: ${where === '' ? '' : `${where}: `}${problem.message}`;
}

/**
 * `hint`: one line on what the file seems to be instead, after the problems (detail.hint for the CLI). `omitted`:
 * problems found and not described (problemsOf). The first MAX_LISTED_PROBLEMS are listed; the rest are one line
 * that counts them, last in detail.problems (so the CLI prints it) and as detail.omitted.
 */
function invalidPolicy(file: string, problems: readonly PolicyProblem[], hint?: string, omitted = 0): MeshauthError {
  const bounded = listedProblems(problems);
  const more = bounded.omitted + omitted;
  const shown =
    more === 0 ? bounded.listed : [...bounded.listed, { rule: '', field: '', message: omittedProblemsText(more) }];
  const lines = shown.map((p) => formatProblem(file, p));
  if (hint !== undefined) lines.push(`${file}: hint: ${hint}`);
  return new MeshauthError('MESHAUTH_ERR_POLICY_INVALID', `invalid policy ${file}:\n  ${lines.join('\n  ')}`, {
    reason: 'invalid',
    detail: {
      file,
      problems: shown,
      ...(more === 0 ? {} : { omitted: more }),
      ...(hint === undefined ? {} : { hint }),
    },
  });
}
