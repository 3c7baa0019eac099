// An outbound endpoint set for the route `orders.shop` (name `orders.shop.test`) whose DNS answers a test scripts:
// the real set, endpoints and balancer, a stub resolver. For tests of how the set follows answers and logs.
import type { AddressResolver, Resolution } from '../../src/sidecar/endpoints/dns-resolver.js';
import { EndpointSet } from '../../src/sidecar/endpoints/endpoint-set.js';
import { type Logger, Metrics } from '../../src/telemetry/index.js';
import type { ClientTlsContext } from '../../src/tls/index.js';
import type { TestCa } from './test-ca.js';

export interface ScriptedEndpointSetOptions {
  readonly ca: TestCa;
  readonly tls: ClientTlsContext;
  readonly port: number;
  readonly logger: Logger;
  /** Each resolution of the name. */
  readonly resolve: () => Resolution;
  /** The set's clock for when the name was last asked (default: its own). */
  readonly clock?: () => number;
}

export function scriptedEndpointSet(options: ScriptedEndpointSetOptions): EndpointSet {
  const resolver = { resolve: async () => options.resolve() } as unknown as AddressResolver;
  return new EndpointSet({
    routeKey: 'orders.shop',
    name: 'orders.shop.test',
    port: options.port,
    accepts: undefined,
    context: {
      tls: options.tls,
      trustDomain: options.ca.trustDomain,
      connectTimeoutMs: 2_000,
      timeoutMs: 5_000,
      http2: true,
      metrics: new Metrics(),
      logger: options.logger,
    },
    resolver,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  });
}
