// Policy for TCP connections (the policy at layer 4). Pure. A TCP connection carries only what L4 knows: the peer's
// SPIFFE ID (`from.*`), the port (`to.ports`: for a TCP connection, the port of the `inbound.tcp` app), the source
// address (`when.sourceIps`) and the time (`when.time`). A rule that can match a TCP connection must not test
// anything else: a deny on a path could never match a tunnel and would silently let it through (a widening), so
// such a rule is a policy error naming it. A rule is kept off TCP connections by a `to.ports` without the TCP port.
import {
  type AuthzHeaders,
  type AuthzRequest,
  type CompiledPolicy,
  formatProblem,
  type PolicyProblem,
} from '../../authz/index.js';
import { MeshauthError } from '../../errors/index.js';
import type { SpiffeId } from '../../identity/index.js';

/** Condition fields (Check.field) a TCP connection can be tested on. */
const L4_FIELD = /^(from(\..+)?|to\.ports|when\.sourceIps|when\.time)$/;
const NO_HEADERS: AuthzHeaders = Object.freeze({});

/**
 * The decision input for a TCP connection: no method, path, host, headers, user or chain. An empty method makes
 * the index skip every rule with `to.methods` (validateTcpPolicy refuses those on TCP anyway).
 */
export function tcpAuthzRequest(peerId: SpiffeId, sourceIp: string, appPort: number, now: Date): AuthzRequest {
  return { peerId, method: '', path: '', host: '', port: appPort, headers: NO_HEADERS, sourceIp, now };
}

/** Every rule that can match a TCP connection to `appPort` yet tests an HTTP-only condition. */
export function validateTcpPolicy(policy: CompiledPolicy, appPort: number): PolicyProblem[] {
  const probe = tcpAuthzRequest(undefined as unknown as SpiffeId, '', appPort, new Date(0));
  const problems: PolicyProblem[] = [];
  for (const rule of policy.rules) {
    const ports = rule.checks.find((c) => c.field === 'to.ports');
    if (ports !== undefined && !ports.test(probe, policy.context.reset(probe))) continue; // an HTTP-only rule
    const fields = new Set<string>();
    if (rule.methodCheck !== undefined) fields.add('to.methods');
    for (const check of rule.checks) {
      // `when.headers.x-y`, `when.user.scope`, `when.chain.includes` are reported as the key the author wrote.
      if (!L4_FIELD.test(check.field)) fields.add(check.field.split('.').slice(0, 2).join('.'));
    }
    for (const field of fields) {
      problems.push({
        rule: `rules[${rule.index}] "${rule.name}"`,
        field,
        message:
          `can match TCP connections (inbound.tcp, app port ${appPort}), which carry no ${describe(field)}: ` +
          `remove it, or add to.ports naming only the HTTP listener port so the rule does not apply to TCP`,
      });
    }
  }
  return problems;
}

/** validateTcpPolicy as a check: throws MESHAUTH_ERR_POLICY_INVALID listing every problem (as parsePolicy does). */
export function assertTcpPolicy(policy: CompiledPolicy, appPort: number, file: string): void {
  const problems = validateTcpPolicy(policy, appPort);
  if (problems.length === 0) return;
  const lines = problems.map((p) => formatProblem(file, p));
  throw new MeshauthError('MESHAUTH_ERR_POLICY_INVALID', `invalid policy ${file} for TCP:\n  ${lines.join('\n  ')}`, {
    reason: 'tcp_l7_condition',
    detail: { file, problems },
  });
}

function describe(field: string): string {
  switch (field) {
    case 'to.methods':
      return 'HTTP method';
    case 'to.paths':
      return 'path';
    case 'to.hosts':
      return 'Host header';
    case 'when.headers':
      return 'headers';
    case 'when.user':
      return 'end user';
    case 'when.chain':
      return 'call chain (passport)';
    default:
      return field;
  }
}
