// Tables of expected decisions for `meshauth policy test FILE --cases CASES.yaml`: users keep their policy's
// intent under CI. Pure (the CLI reads the file). `expect: reject` covers requests the sidecar refuses with 400
// before any rule runs (ambiguous path, invalid method). Read by the policy's strict YAML rules (config/yaml-text.ts)
// and refused with at most MAX_LISTED_PROBLEMS problems listed, as the policy is; each problem names the file, the
// key (`cases[3].expect`) and what was expected, in the config loaders' words.
import { z } from 'zod';
import { describeConfigIssue } from '../config/config-issue.js';
import { configIssueMessage } from '../config/issue-message.js';
import { listedProblems, omittedProblemsText } from '../config/listed-problems.js';
import { schemaLeafPaths } from '../config/schema-keys.js';
import { readStrictYaml, yamlProblemText } from '../config/yaml-text.js';
import { MeshauthError } from '../errors/index.js';
import { evaluateTestRequest, type TestOutcome } from './evaluate-test-request.js';
import type { CompiledPolicy } from './policy/compiled-policy.js';

const caseSchema = z
  .strictObject({
    name: z.string().min(1),
    from: z.string(),
    method: z.string(),
    path: z.string(),
    host: z.string().optional(),
    port: z.int().min(0).max(65535).optional(),
    user: z.record(z.string(), z.unknown()).optional(),
    // The union's own words: zod's for a value neither branch takes are "Invalid input".
    headers: z
      .record(
        z.string(),
        z.union([z.string(), z.array(z.string())], { error: 'expected a string or a list of strings' }),
      )
      .optional(),
    sourceIp: z.string().optional(),
    chain: z.array(z.string()).optional(),
    trustedForwarder: z.boolean().optional(),
    time: z.iso
      .datetime({ offset: true, error: 'expected an ISO 8601 time with its UTC offset, e.g. 2026-01-05T09:00:00Z' })
      .optional(),
    expect: z.enum(['allow', 'deny', 'reject']),
    rule: z.string().optional(),
  })
  .refine((c) => !(c.expect === 'reject' && c.rule !== undefined), {
    error: 'a rejected request has no deciding rule: drop `rule`',
    path: ['rule'],
  });

const casesSchema = z.strictObject({ cases: z.array(caseSchema).min(1) });

export type PolicyCase = z.infer<typeof caseSchema>;

export interface CaseResult {
  readonly name: string;
  readonly passed: boolean;
  readonly expected: string;
  /** `allow`, `deny` or `reject`. */
  readonly actual: string;
  /** The deciding rule, or the error code of a reject. */
  readonly detail: string;
  readonly outcome: TestOutcome;
}

export function parseCases(text: string, file: string): PolicyCase[] {
  // Not yaml's parseDocument: it recursed over any depth (a deep file overflowed the stack or held the process for
  // seconds), took !!binary/!!set/!!timestamp values, and reported an unresolved tag on stderr only.
  const read = readStrictYaml(text);
  if (!read.ok) throw casesInvalid(file, read.problems.map(yamlProblemText));
  const data = read.value;
  if (data === null || data === undefined) {
    throw casesInvalid(file, ['the file is empty: expected `cases:` with a list of cases']);
  }
  const result = casesSchema.safeParse(data, { error: configIssueMessage });
  if (!result.success) {
    const { listed, omitted } = listedProblems(result.error.issues);
    throw casesInvalid(
      file,
      listed.map((issue) =>
        describeConfigIssue(issue, { data, leafPaths: casesLeafPaths, reference: 'see docs/policy.md' }),
      ),
      omitted,
    );
  }
  return result.data.cases;
}

let leafPathCache: readonly string[] | undefined;

/** The cases file's key paths (walked on the first unknown key only). */
function casesLeafPaths(): readonly string[] {
  leafPathCache ??= schemaLeafPaths(casesSchema);
  return leafPathCache;
}

/** `now` is used for cases without their own `time`. Throws for a case with an invalid `from`/`chain` ID. */
export function runCases(policy: CompiledPolicy, cases: readonly PolicyCase[], now: Date): CaseResult[] {
  return cases.map((c) => {
    const outcome = evaluateTestRequest(policy, {
      from: c.from,
      method: c.method,
      path: c.path,
      host: c.host,
      port: c.port,
      user: c.user,
      headers: c.headers,
      sourceIp: c.sourceIp,
      chain: c.chain,
      trustedForwarder: c.trustedForwarder,
      now: c.time === undefined ? now : new Date(c.time),
    });
    const actual = outcome.kind === 'reject' ? 'reject' : outcome.explanation.decision;
    const detail = outcome.kind === 'reject' ? outcome.code : outcome.explanation.rule;
    const expected = c.rule === undefined ? c.expect : `${c.expect} (${c.rule})`;
    const passed = actual === c.expect && (c.rule === undefined || c.rule === detail);
    return { name: c.name, passed, expected, actual, detail, outcome };
  });
}

/** `omitted`: problems found and not described; with those past MAX_LISTED_PROBLEMS, one line counts them. */
function casesInvalid(file: string, problems: readonly string[], omitted = 0): MeshauthError {
  const bounded = listedProblems(problems);
  const more = bounded.omitted + omitted;
  const lines = (more === 0 ? bounded.listed : [...bounded.listed, omittedProblemsText(more)]).map(
    (p) => `${file}: ${p}`,
  );
  // detail.problems: the lines, for the CLI to print one per line with the code, as it prints a policy's.
  return new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', `invalid cases file ${file}:\n  ${lines.join('\n  ')}`, {
    reason: 'cases_invalid',
    detail: { file, problems: lines },
  });
}
