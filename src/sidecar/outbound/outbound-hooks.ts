// The extension point of the outbound side: the passport wrapper (passport-wrapper.ts) sees every request before
// it leaves for the peer and may add headers. Absent hook → no call, no promise.
import type { RouteConfig } from '../../config/index.js';

export interface OutboundRequestContext {
  readonly route: RouteConfig;
  readonly method: string;
  readonly path: string;
  /** Flat `[name, value, …]` list that will be sent; identity headers were already stripped (passport kept). */
  readonly headers: string[];
}

/** May edit `context.headers` in place (e.g. replace `x-meshauth-passport` by a wrapped one). */
export type OnOutboundRequest = (context: OutboundRequestContext) => void | Promise<void>;
