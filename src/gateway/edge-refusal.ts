// A request the edge refuses before a route is known (a bad head, a reserved path, a logout it will not do): one
// count as a deny without a route and one `gateway_deny` line, the same shape wherever the refusal is made.
import type { MeshauthError } from '../errors/index.js';
import { clientAddress } from '../platform/index.js';
import type { Logger, Metrics } from '../telemetry/index.js';

export interface EdgeRefusal {
  readonly error: MeshauthError;
  /** The `rule` label: a bounded name of why (the error's reason unless the caller names it). */
  readonly rule: string;
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
