// `meshauth policy validate|test`: the Policy Administration Point's CLI. Exit codes: 0 evaluated / valid;
// 1 when a cases table has a mismatch; 2 for invalid input (policy, cases file, flags).
import type { Command } from 'commander';
import type { CaseResult, CompiledPolicy, PolicyCase, TestOutcome } from '../authz/index.js';
import { type AuthzUser, evaluateTestRequest, loadPolicyFile, parseCases, runCases } from '../authz/index.js';
import { readPolicyText } from '../authz/load-policy-file.js';
import { formatProblem, type PolicyProblem } from '../authz/policy/parse-policy.js';
import { plural } from '../config/issue-message.js';
import { type ErrorCode, MeshauthError } from '../errors/index.js';
import { SpiffeId, TrustDomain } from '../identity/index.js';
import { EXIT_FAILURE, EXIT_USAGE, formatError } from './run.js';

interface TrustDomainOption {
  readonly trustDomain?: string;
}

interface TestOptions extends TrustDomainOption {
  readonly from?: string;
  readonly method?: string;
  readonly path?: string;
  readonly host?: string;
  readonly port?: string;
  readonly user?: string;
  readonly header: string[];
  readonly sourceIp?: string;
  readonly chain?: string;
  readonly trustedForwarder?: boolean;
  readonly time?: string;
  readonly json?: boolean;
  readonly cases?: string;
}

/** `--trust-domain`, declared once for every policy command that loads a policy (validate, test). */
const TRUST_DOMAIN_OPTION = [
  '--trust-domain <td>',
  "SPIFFE trust domain, e.g. example.org: also refuse rules naming another trust domain's IDs, as the " +
    'sidecar and gateway of that trust domain do',
] as const;

/** Parsed before any file is read: a mistyped name is a usage error, not one problem per file. */
function trustDomainOf(options: TrustDomainOption): string | undefined {
  return options.trustDomain === undefined ? undefined : TrustDomain.parse(options.trustDomain).name;
}

export function registerPolicyCommands(program: Command): void {
  const policy = program.command('policy').description('validate and dry-run authorization policies');

  policy
    .command('validate')
    .description('check policy files; prints "FILE: ok (N rules)" or every problem with its rule and field')
    .argument('<files...>', 'policy YAML files')
    .option(...TRUST_DOMAIN_OPTION)
    .action(async (files: string[], options: TrustDomainOption) => {
      const trustDomain = trustDomainOf(options);
      let failed = false;
      for (const file of files) {
        try {
          const loaded = await loadPolicyFile(file, trustDomain);
          const mode = loaded.policy.mode === 'audit' ? ', audit mode' : '';
          out(`${file}: ok (${plural(loaded.policy.rules.length, 'rule')}${mode})`);
        } catch (error) {
          failed = true;
          printProblems(error);
        }
      }
      if (failed) process.exitCode = EXIT_USAGE;
    });

  policy
    .command('test')
    .description('show the decision for one request (and why each rule did not match), or run a table of cases')
    .argument('<file>', 'policy YAML file')
    .option('--from <id>', "the caller's SPIFFE ID")
    .option('--method <method>', 'HTTP method', 'GET')
    .option('--path <path>', 'request path as sent (normalized like the sidecar does)')
    .option('--host <host>', 'Host header')
    .option('--port <port>', 'port the request arrives on')
    .option('--user <json>', 'verified end-user claims as JSON, e.g. \'{"sub":"alice","scope":"orders:read"}\'')
    .option('--header <name=value>', 'request header (repeat for several values)', collect, [])
    .option('--source-ip <ip>', "the caller's address")
    .option('--chain <ids>', 'comma-separated SPIFFE IDs of earlier hops, first hop first')
    .option(
      '--trusted-forwarder',
      "the caller is in the sidecar's inbound.trustForwardedFrom: its X-Forwarded-* headers reach the policy",
    )
    .option('--time <iso>', 'time of the request (default: now)')
    .option('--json', 'machine-readable output')
    .option('--cases <file>', 'YAML table of cases with expected decisions')
    .option(...TRUST_DOMAIN_OPTION)
    .action(async (file: string, options: TestOptions) => {
      const trustDomain = trustDomainOf(options);
      const chain = options.chain === undefined ? undefined : options.chain.split(',').map((s) => s.trim());
      if (options.from !== undefined) refuseForeignCaller(options.from, trustDomain, '--from');
      if (chain !== undefined) refuseForeignChain(chain, trustDomain);
      const loaded = await listingProblems(() => loadPolicyFile(file, trustDomain));
      if (loaded === undefined) return;
      const now = options.time === undefined ? new Date() : parseTime(options.time);
      if (options.cases !== undefined) {
        const casesFile = options.cases;
        const cases = await listingProblems(async () =>
          parseCases(await readPolicyText(casesFile, 'cases file'), casesFile),
        );
        if (cases === undefined) return;
        const results = runCasesIn(trustDomain, loaded.policy, cases, now);
        printCases(results, options.json === true);
        if (results.some((r) => !r.passed)) process.exitCode = EXIT_FAILURE;
        return;
      }
      if (options.from === undefined || options.path === undefined) {
        throw usage('policy test needs --from and --path (or --cases FILE)');
      }
      const outcome = evaluateTestRequest(loaded.policy, {
        from: options.from,
        method: options.method ?? 'GET',
        path: options.path,
        host: options.host,
        port: options.port === undefined ? undefined : parsePort(options.port),
        user: options.user === undefined ? undefined : parseUser(options.user),
        headers: parseHeaders(options.header),
        sourceIp: options.sourceIp,
        chain,
        trustedForwarder: options.trustedForwarder === true,
        now,
      });
      if (options.json === true) out(JSON.stringify(outcomeJson(outcome), null, 2));
      else printOutcome(outcome);
    });
}

/**
 * Refuses a --from outside --trust-domain, as the policy's rules are: the sidecar of that trust domain refuses such a
 * peer in the TLS handshake, so a decision for it describes no request that sidecar sees. An ID that does not parse
 * is left to the dry run, which reports it as before.
 */
function refuseForeignCaller(from: string, trustDomain: string | undefined, field: string): void {
  const id = foreignCaller(from, trustDomain);
  if (id === undefined) return;
  throw usage(
    `${field} ${from} is in trust domain ${id.trustDomain.name}, not ${trustDomain} (--trust-domain): no peer of ` +
      `another trust domain is ever accepted (meshauth has no federation), so a sidecar of ${trustDomain} refuses ` +
      `it before any rule runs: give a ${field} in ${trustDomain}, or the --trust-domain of the mesh it is in`,
  );
}

/**
 * Refuses a --chain with a hop outside --trust-domain, as the sidecar rejects such a passport (401
 * MESHAUTH_ERR_PASSPORT_INVALID) before any rule runs. The first hop signed the passport's origin and is validated
 * against the trust bundle; a later hop is asserted by the peer's own link, and the sidecar refuses one outside its
 * trust domain (or a bare trust-domain ID) because no honest peer names one (meshauth has no federation). A chain
 * with an ID that does not parse is left to the dry run.
 */
function refuseForeignChain(chain: readonly string[], trustDomain: string | undefined): void {
  const hop = foreignHop(chain, trustDomain);
  if (hop === undefined) return;
  const where = outside(hop.id, trustDomain);
  if (hop.index === 0 && !hop.id.isTrustDomainId) {
    throw usage(
      `--chain hop ${hop.id} ${where}: the first hop signed the passport's ` +
        `origin, and a sidecar of ${trustDomain} accepts no signer of another trust domain (meshauth has no ` +
        `federation), so it rejects the passport before any rule runs: give a --chain starting in ${trustDomain}, ` +
        'or the --trust-domain of the mesh it is in',
    );
  }
  throw usage(
    `--chain hop ${hop.id} ${where}: every honest hop of a call in ${trustDomain} is a workload of ` +
      `${trustDomain} (meshauth has no federation), so a sidecar of ${trustDomain} rejects a passport naming any ` +
      `other hop before any rule runs: give a --chain of workloads in ${trustDomain}, or the --trust-domain of the ` +
      'mesh it is in',
  );
}

/** Why the sidecar of --trust-domain refuses a request before any rule runs, as a rejected case shows it. */
interface RefusedBeforeRules {
  readonly code: ErrorCode;
  readonly reason: string;
  readonly message: string;
}

/**
 * runCases, with each case the sidecar of --trust-domain refuses before any rule decided as it decides it: a `from`
 * outside it is denied in the TLS handshake, then a `chain` with a hop outside it has its passport rejected.
 * No rule is named (the refusal's code is). A table may hold such a case on purpose ("other trust domains may not"):
 * it passes as `expect: deny`; one expecting allow or a rule fails and says why, where running the rules on it
 * passed a case no request can match.
 */
function runCasesIn(
  trustDomain: string | undefined,
  policy: CompiledPolicy,
  cases: readonly PolicyCase[],
  now: Date,
): CaseResult[] {
  return cases.flatMap((c) => {
    const refused = refusedBeforeRules(c, trustDomain);
    if (refused === undefined) return runCases(policy, [c], now);
    const { code, reason, message } = refused;
    return [
      {
        name: c.name,
        passed: c.expect === 'deny' && c.rule === undefined,
        expected: c.rule === undefined ? c.expect : `${c.expect} (${c.rule})`,
        actual: 'deny',
        detail: code,
        outcome: { kind: 'reject', status: 401, code, reason, message },
      },
    ];
  });
}

/** In the sidecar's order: the peer's certificate in the handshake, then the passport of the request. */
function refusedBeforeRules(c: PolicyCase, trustDomain: string | undefined): RefusedBeforeRules | undefined {
  const peer = foreignCaller(c.from, trustDomain);
  if (peer !== undefined) {
    return {
      code: 'MESHAUTH_ERR_SVID_TRUST_DOMAIN',
      reason: 'trust_domain',
      message: `${c.from} is in trust domain ${peer.trustDomain.name}, not ${trustDomain} (--trust-domain)`,
    };
  }
  const hop = c.chain === undefined ? undefined : foreignHop(c.chain, trustDomain);
  if (hop === undefined) return undefined;
  if (hop.index === 0) {
    return {
      code: 'MESHAUTH_ERR_PASSPORT_INVALID',
      reason: 'untrusted_signer',
      message: `the passport's origin signer ${hop.id} (chain[0]) ${outside(hop.id, trustDomain)}`,
    };
  }
  return {
    code: 'MESHAUTH_ERR_PASSPORT_INVALID',
    reason: 'chain_foreign_hop',
    message: `the passport's chain[${hop.index}] ${hop.id} ${outside(hop.id, trustDomain)}`,
  };
}

/** A hop of a chain that the sidecar of --trust-domain refuses, with its place in the chain. */
interface ForeignHop {
  readonly index: number;
  readonly id: SpiffeId;
}

/**
 * The first hop of `chain` outside --trust-domain or naming a trust domain rather than a workload, when
 * --trust-domain is given and every hop parses (else the dry run reports it).
 */
function foreignHop(chain: readonly string[], trustDomain: string | undefined): ForeignHop | undefined {
  if (trustDomain === undefined) return undefined;
  const ids = chain.map((hop) => SpiffeId.tryParse(hop));
  if (!ids.every((id) => id !== undefined)) return undefined;
  const domain = TrustDomain.parse(trustDomain);
  const index = ids.findIndex((id) => !id.isWorkloadOf(domain));
  const id = ids[index];
  return id === undefined ? undefined : { index, id };
}

/** Why `id` is no workload of --trust-domain, e.g. "is in trust domain other.org, not example.org". */
function outside(id: SpiffeId, trustDomain: string | undefined): string {
  return id.isTrustDomainId && id.trustDomain.name === trustDomain
    ? `names trust domain ${trustDomain} (--trust-domain) itself, not a workload of it`
    : `is in trust domain ${id.trustDomain.name}, not ${trustDomain} (--trust-domain)`;
}

/** The caller's SPIFFE ID when --trust-domain is given and the ID parses and is outside it. */
function foreignCaller(from: string, trustDomain: string | undefined): SpiffeId | undefined {
  const id = trustDomain === undefined ? undefined : SpiffeId.tryParse(from);
  return id === undefined || id.trustDomain.name === trustDomain ? undefined : id;
}

function printOutcome(outcome: TestOutcome): void {
  if (outcome.kind === 'reject') {
    out(`reject: ${outcome.status} ${outcome.code} (${outcome.reason ?? 'invalid'})`);
    out(`  ${outcome.message}`);
    return;
  }
  const { explanation: e, request: r } = outcome;
  const audit = e.enforced ? '' : ' — audit mode: reported, not enforced';
  out(`${e.decision}: rule "${e.rule}"${audit}`);
  out(
    `  request: ${r.method} ${r.path} from ${r.peerId.toString()}${r.user?.sub === undefined ? '' : ` for user ${String(r.user.sub)}`}`,
  );
  for (const t of e.trace) {
    if (t.matched) {
      out(`  ${t.rule} (${t.action}): matched`);
      continue;
    }
    out(`  ${t.rule} (${t.action}): no match`);
    for (const m of t.misses) out(`    ${m.field}: got ${m.actual}, expected ${m.expected}`);
  }
  if (e.trace.length === 0) out('  (the policy has no rules)');
}

function outcomeJson(outcome: TestOutcome): unknown {
  if (outcome.kind === 'reject') {
    return { decision: 'reject', status: outcome.status, code: outcome.code, reason: outcome.reason };
  }
  const { explanation: e, request: r } = outcome;
  return {
    decision: e.decision,
    rule: e.rule,
    mode: e.mode,
    enforced: e.enforced,
    reasons: e.reasons,
    request: { from: r.peerId.toString(), method: r.method, path: r.path, host: r.host, port: r.port },
    trace: e.trace,
  };
}

function printCases(results: readonly CaseResult[], json: boolean): void {
  const failed = results.filter((r) => !r.passed).length;
  if (json) {
    out(
      JSON.stringify(
        {
          passed: results.length - failed,
          failed,
          cases: results.map(({ name, passed, expected, actual, detail }) => ({
            name,
            passed,
            expected,
            actual,
            detail,
          })),
        },
        null,
        2,
      ),
    );
    return;
  }
  for (const r of results) {
    const got = `${r.actual} (${r.detail})`;
    out(r.passed ? `PASS ${r.name}: ${got}` : `FAIL ${r.name}: expected ${r.expected}, got ${got}`);
  }
  out(`${results.length} cases: ${results.length - failed} passed, ${failed} failed`);
}

/**
 * `load`'s value; a refused policy or cases file is printed as `validate` prints it (printProblems) with exit code 2,
 * and undefined returned. Any other error is thrown, to be reported and given its exit code like every CLI error.
 */
async function listingProblems<T>(load: () => Promise<T>): Promise<T | undefined> {
  try {
    return await load();
  } catch (error) {
    if (problemLines(error) === undefined) throw error;
    printProblems(error);
    process.exitCode = EXIT_USAGE;
    return undefined;
  }
}

/**
 * One line per problem, each ending in its code as every other CLI error does (`[MESHAUTH_ERR_POLICY_INVALID]`,
 * the code the sidecar gives the same file; `[MESHAUTH_ERR_CONFIG_INVALID]` for a cases file), so a script can tell
 * a bad policy from an unreadable one.
 */
function printProblems(error: unknown): void {
  const lines = problemLines(error);
  if (lines === undefined || !(error instanceof MeshauthError)) {
    process.stderr.write(`${formatError(error)}\n`);
    return;
  }
  for (const line of lines) process.stderr.write(`${line} [${error.code}]\n`);
  // Not a problem of its own, so without the code: a script counting problem lines still counts the same ones.
  const hint = error.detail?.hint;
  if (typeof hint === 'string') process.stderr.write(`${String(error.detail?.file)}: hint: ${hint}\n`);
}

/** The problem lines of a refused policy file (`FILE: rules[2] "name" field: …`) or cases file (`FILE: key: …`). */
function problemLines(error: unknown): readonly string[] | undefined {
  if (!(error instanceof MeshauthError)) return undefined;
  const { file, problems } = error.detail ?? {};
  if (typeof file !== 'string' || !Array.isArray(problems) || problems.length === 0) return undefined;
  if (error.code === 'MESHAUTH_ERR_POLICY_INVALID') {
    return (problems as readonly PolicyProblem[]).map((p) => formatProblem(file, p));
  }
  if (error.code === 'MESHAUTH_ERR_CONFIG_INVALID' && error.reason === 'cases_invalid') {
    return problems.map(String);
  }
  return undefined;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function parseHeaders(pairs: readonly string[]): Record<string, string[]> {
  const headers: Record<string, string[]> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw usage(`--header expects name=value, got ${JSON.stringify(pair)}`);
    const name = pair.slice(0, eq).trim().toLowerCase();
    headers[name] = [...(headers[name] ?? []), pair.slice(eq + 1)];
  }
  return headers;
}

function parseUser(json: string): AuthzUser {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw usage('--user expects a JSON object, e.g. \'{"sub":"alice"}\'');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw usage('--user expects a JSON object, e.g. \'{"sub":"alice"}\'');
  }
  return value as AuthzUser;
}

function parsePort(text: string): number {
  // Decimal digits only: Number() read "" (an unset shell variable) as port 0 and "0x1f90" as 8080, so the dry run
  // decided for a port nobody typed.
  const port = /^\d{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!(port >= 0 && port <= 65535)) throw usage(`--port expects 0–65535, got ${JSON.stringify(text)}`);
  return port;
}

function parseTime(text: string): Date {
  const time = new Date(text);
  if (Number.isNaN(time.getTime())) throw usage(`--time expects an ISO 8601 time, got ${JSON.stringify(text)}`);
  return time;
}

function usage(message: string): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_USAGE', message, { reason: 'usage' });
}

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}
