// The gateway counts and logs a request it refuses before choosing a route under a `rule` (the refusal's reason: a
// reserved path, a bad Host, an ambiguous path, a logout by another method), the label slot a policy rule's name
// fills. Those names were not reserved, so a policy rule called `reserved_path` read as the gateway's refusal in
// meshauth_gateway_decisions_total and the deny lines. Now every one is reserved, from the list the gateway reports.
import { describe, expect, it } from 'vitest';
import { EDGE_REFUSAL_RULES, normalizePath, RESERVED_RULES, reservedRule } from '../../../src/authz/index.js';
import { isMeshauthError, MeshauthError } from '../../../src/errors/index.js';
import { refusalRule } from '../../../src/gateway/edge-refusal.js';
import { expectationUnsupported, nodeRefusal } from '../../../src/platform/node-refusal.js';
import { checkH1Head, checkH2Head } from '../../../src/sidecar/inbound/request-checks.js';
import { POLICY_HEAD, policyProblems } from '../../helpers/policy-problems.js';

function thrownBy(run: () => unknown): MeshauthError {
  try {
    run();
  } catch (error) {
    if (isMeshauthError(error)) return error;
    throw error;
  }
  throw new Error('expected a MeshauthError');
}

// The refusals the gateway gets from the checks it shares with the sidecars, made by the checks themselves.
const SHARED: ReadonlyArray<readonly [string, () => MeshauthError | undefined]> = [
  ['h1 asterisk target', () => checkH1Head('*', ['Host', 'a'])],
  ['h1 two Hosts', () => checkH1Head('/', ['Host', 'a', 'Host', 'b'])],
  ['h1 no Host', () => checkH1Head('/', [])],
  ['h1 Host with a space', () => checkH1Head('/', ['Host', 'a b'])],
  ['h1 gzip, chunked', () => checkH1Head('/', ['Host', 'a', 'Transfer-Encoding', 'gzip, chunked'])],
  ['h2 two :authority', () => checkH2Head({ ':path': '/' }, [':authority', 'a', ':authority', 'b'], 16_384)],
  ['h2 header list too large', () => checkH2Head({ ':path': '/' }, [':authority', 'a', 'x', 'y'.repeat(100)], 64)],
  ['h2 asterisk :path', () => checkH2Head({ ':path': '*' }, [':authority', 'a'], 16_384)],
  ['h2 no authority', () => checkH2Head({ ':path': '/' }, [], 16_384)],
  ['h2 bad authority', () => checkH2Head({ ':path': '/' }, [':authority', 'a b'], 16_384)],
  ['h2 host ≠ :authority', () => checkH2Head({ ':path': '/' }, [':authority', 'a', 'host', 'b'], 16_384)],
  ['path not origin-form', () => thrownBy(() => normalizePath('x'))],
  ['path with a space', () => thrownBy(() => normalizePath('/a b'))],
  ['path with NUL', () => thrownBy(() => normalizePath('/a%00'))],
  ['path with a backslash', () => thrownBy(() => normalizePath('/a\\b'))],
  ['path with %2F', () => thrownBy(() => normalizePath('/a%2Fb'))],
  ['path with %zz', () => thrownBy(() => normalizePath('/a%zz'))],
  ['path with ;', () => thrownBy(() => normalizePath('/a;b'))],
  ['target with #', () => thrownBy(() => normalizePath('/a#b'))],
  ['node: request timeout', () => nodeRefusal('ERR_HTTP_REQUEST_TIMEOUT')],
  ['node: head too large', () => nodeRefusal('HPE_HEADER_OVERFLOW')],
  ['node: malformed head', () => nodeRefusal('HPE_INVALID_HEADER_TOKEN')],
  ['node: Expect', () => expectationUnsupported()],
];

describe('gateway refusal rules are reserved policy rule names', () => {
  it.each([
    'reserved_path',
    'no_sign_in',
    'http_1_0',
    'host_invalid',
    'encoded_slash',
    'http_malformed',
    'logout-method',
    'bad_request',
  ])('fail/a policy rule named %s is refused by the validator', (name) => {
    const problems = policyProblems(`${POLICY_HEAD}rules: [{ name: ${name}, action: allow }]\n`);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ rule: `rules[0] "${name}"`, field: 'name' });
    expect(problems[0]?.message).toMatch(
      new RegExp(`^"${name}" is reserved \\(meshauth's name for the gateway's refusal, before any route, of `),
    );
  });

  it('ok/every refusal rule is in the reserved list', () => {
    for (const name of Object.keys(EDGE_REFUSAL_RULES)) expect(reservedRule(name)?.name).toBe(name);
    expect(RESERVED_RULES.filter((r) => r.name in EDGE_REFUSAL_RULES)).toHaveLength(
      Object.keys(EDGE_REFUSAL_RULES).length,
    );
  });

  it.each(SHARED)('ok/%s: the gateway reports the check’s own reason, a reserved name', (_name, refuse) => {
    const error = refuse();
    expect(error).toBeInstanceOf(MeshauthError);
    const reason = (error as MeshauthError).reason as string;
    expect(refusalRule(error as MeshauthError)).toBe(reason);
    expect(reservedRule(reason)).toBeDefined();
  });

  it('fail/a reason from outside the list is reported as bad_request, never as itself', () => {
    const error = new MeshauthError('MESHAUTH_ERR_BAD_REQUEST', 'x', { reason: 'orders-read' });
    expect(refusalRule(error)).toBe('bad_request');
    expect(refusalRule(new MeshauthError('MESHAUTH_ERR_BAD_REQUEST', 'x'))).toBe('bad_request');
  });
});
