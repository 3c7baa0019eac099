// The gateway counts and logs a request it refuses before choosing a route under a `rule` (the refusal's reason: a
// reserved path, a bad Host, an ambiguous path, a logout by another method), the label slot a policy rule's name
// fills. Those names were not reserved, so a policy rule called `reserved_path` read as the gateway's refusal in
// meshauth_gateway_decisions_total and the deny lines. Now every one is reserved, from the list the gateway reports.
// The edge handler's refusals are driven through the handler itself: a reason left out of that list is counted
// there as `bad_request`, which a check over the list alone (it reserved what it iterated over) could never see.
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { normalizePath, reservedRule } from '../../../src/authz/index.js';
import { isMeshauthError, MeshauthError } from '../../../src/errors/index.js';
import { EdgeHandler, type EdgeRequest, type EdgeResponseSink } from '../../../src/gateway/edge-handler.js';
import { refusalRule } from '../../../src/gateway/edge-refusal.js';
import { gatewayConfigFromObject } from '../../../src/gateway/index.js';
import type { MeshForwarder } from '../../../src/gateway/mesh-forwarder.js';
import { expectationUnsupported, nodeRefusal } from '../../../src/platform/node-refusal.js';
import { checkH1Head, checkH2Head } from '../../../src/sidecar/inbound/request-checks.js';
import { Metrics } from '../../../src/telemetry/index.js';
import { oneRouteGatewayDocument } from '../../helpers/gateway-files.js';
import { type LogLines, logLines } from '../../helpers/log-lines.js';
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

/** A request head as the public listener hands it to the edge handler. */
interface Head {
  readonly version: '1.0' | '1.1' | '2';
  readonly target: string;
  /** As received: on HTTP/2 the decoded list, pseudo-headers included. */
  readonly rawHeaders: readonly string[];
}

const h1 = (target: string, rawHeaders: readonly string[] = ['Host', 'shop.example']): Head => ({
  version: '1.1',
  target,
  rawHeaders,
});
const h2 = (rawHeaders: readonly string[]): Head => ({
  version: '2',
  target: '/',
  rawHeaders: [':path', '/', ...rawHeaders],
});

// Each place the edge handler refuses a request before a route is known, with the reason it refuses it for.
const EDGE_REFUSALS: ReadonlyArray<readonly [string, Head, string]> = [
  ['HTTP/1.0', { ...h1('/'), version: '1.0' }, 'http_1_0'],
  ['h1 asterisk target', h1('*'), 'target_form'],
  ['h1 no Host', h1('/', []), 'host_missing'],
  ['h1 two Hosts', h1('/', ['Host', 'a', 'Host', 'b']), 'host_repeated'],
  ['h1 Host with a space', h1('/', ['Host', 'a b']), 'host_invalid'],
  ['h1 gzip, chunked', h1('/', ['Host', 'a', 'Transfer-Encoding', 'gzip, chunked']), 'transfer_encoding'],
  ['h2 header list too large', h2([':authority', 'a', 'x', 'y'.repeat(20_000)]), 'header_list_size'],
  ['h2 host ≠ :authority', h2([':authority', 'a', 'host', 'b']), 'host_authority_mismatch'],
  ['sign-in callback without sign-in', h1('/.meshauth/callback?code=x'), 'no_sign_in'],
  ['path in the gateway namespace', h1('/.meshauth/other'), 'reserved_path'],
  ['path that normalizes into it', h1('/%2Emeshauth/other'), 'reserved_path'],
  ['path with a space', h1('/a b'), 'bad_char'],
  ['path with NUL', h1('/a%00'), 'nul'],
  ['path with a backslash', h1('/a\\b'), 'backslash'],
  ['path with %2F', h1('/a%2Fb'), 'encoded_slash'],
  ['path with %zz', h1('/a%zz'), 'bad_percent_encoding'],
  ['path with ;', h1('/a;b'), 'path_param'],
  ['target with #', h1('/a#b'), 'fragment'],
];

/** A gateway's edge handler without sign-in, one route; a refused request never reaches the forwarder. */
function edgeHandler(): { readonly handler: EdgeHandler; readonly log: LogLines } {
  const config = gatewayConfigFromObject(
    oneRouteGatewayDocument({ bundle: 'bundle.pem', cert: 'gateway.crt', key: 'gateway.key', token: 'token' }),
    'gateway.yaml',
  );
  const log = logLines('gateway', 'info');
  const handler = new EdgeHandler({
    config,
    forwarder: {} as MeshForwarder,
    metrics: new Metrics(),
    logger: log.logger,
    now: () => new Date(0),
    port: () => 443,
  });
  return { handler, log };
}

/** Hands `head` to the handler (its refusals are answered before its first await); the status answered. */
function handOver(handler: EdgeHandler, head: Head): { status: number } {
  const answer = { status: 0 };
  const [major, minor] = head.version === '2' ? [2, 0] : [1, head.version === '1.0' ? 0 : 1];
  const headers: Record<string, string> = {};
  for (let i = 0; i < head.rawHeaders.length; i += 2) {
    headers[(head.rawHeaders[i] as string).toLowerCase()] ??= head.rawHeaders[i + 1] as string;
  }
  const req = Object.assign(Readable.from([]), {
    method: 'GET',
    url: head.target,
    headers,
    httpVersionMajor: major,
    httpVersionMinor: minor,
    rawHeaders: head.rawHeaders,
    complete: true,
    socket: { remoteAddress: '127.0.0.1' },
  });
  const res = {
    headersSent: false,
    writableEnded: false,
    writeHead(status: number) {
      answer.status = status;
      this.headersSent = true;
    },
    end() {
      this.writableEnded = true;
    },
    destroy() {},
  };
  handler.handle(req as unknown as EdgeRequest, res as unknown as EdgeResponseSink);
  return answer;
}

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

  // Driven through the real handler: a reason missing from the list would be counted as `bad_request` there, and
  // the line's rule would no longer be its reason.
  it.each(EDGE_REFUSALS)(
    'ok/%s: the edge handler counts it under its own reason, a reserved name',
    (_name, head, reason) => {
      const edge = edgeHandler();
      const answered = handOver(edge.handler, head);
      expect(answered.status).toBeGreaterThanOrEqual(400);
      const denies = edge.log.find({ event: 'gateway_deny' });
      expect(denies).toHaveLength(1);
      expect(denies[0]).toMatchObject({ route: '', reason, rule: reason });
      expect(reservedRule(reason)).toBeDefined();
    },
  );

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
