// A request the edge refuses before a route is known (a bad head, a reserved path, a logout it will not do): one
// count as a deny without a route and one `gateway_deny` line, the same shape wherever the refusal is made. Its
// `rule` is one of EDGE_REFUSAL_RULES, the names a policy rule may not take: the label is the slot policy rules fill.
import { type EdgeRefusalRule, isEdgeRefusalRule } from '../authz/index.js';
import type { MeshauthError } from '../errors/index.js';
import { clientAddress } from '../platform/index.js';
import type { Logger, Metrics } from '../telemetry/index.js';

export interface EdgeRefusal {
  readonly error: MeshauthError;
  /** The `rule` label: a bounded name of why (refusalRule(error) unless the caller names it). */
  readonly rule: EdgeRefusalRule;
  readonly method: string | undefined;
  readonly sourceIp: string | undefined;
  /** Node's parser code, for a request node:http refused before the edge (log only: unbounded). */
  readonly parserCode?: string | undefined;
}

export function recordEdgeRefusal(metrics: Metrics, logger: Logger, refusal: EdgeRefusal): void {
  const { error, rule, method, sourceIp, parserCode } = refusal;
  metrics.gatewayDecisions.inc({ route: '', decision: 'deny', rule });
  logger.info(
    {
      event: 'gateway_deny',
      route: '',
      rule,
      code: error.code,
      reason: error.reason,
      method,
      sourceIp: clientAddress(sourceIp),
      parserCode,
    },
    'gateway deny',
  );
}

/**
 * The `rule` of a refusal made elsewhere (the head checks, the path normalizer, node:http's parser): its reason. A
 * reason not in the reserved list is reported as `bad_request`, so that no refusal can share a name with a user's
 * policy rule; the log line keeps the reason itself.
 */
export function refusalRule(error: MeshauthError): EdgeRefusalRule {
  const reason = error.reason;
  return reason !== undefined && isEdgeRefusalRule(reason) ? reason : 'bad_request';
}
