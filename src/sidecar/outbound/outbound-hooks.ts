// The extension point of the outbound side: the passport wrapper (passport-wrapper.ts) sees every request before
// it leaves for the peer and may add headers. Absent hook → no call, no promise.
import type { Credentials } from '../../agent/index.js';
import type { RouteConfig } from '../../config/index.js';
import { isMeshauthError, MeshauthError } from '../../errors/index.js';

/**
 * Headers a hook bound to the credentials it saw (a passport link names the leaf it was signed with, and the peer
 * checks that leaf against the connection's). A rotation can land between the hook and the connection the request
 * leaves on; the exchange then calls `rebind` with that connection's credentials before it sends anything.
 */
export interface CredentialBinding {
  readonly credentials: Credentials;
  /** Rewrites the bound headers in place for `credentials`; throws when it cannot (the request is refused). */
  rebind(credentials: Credentials): void;
}

export interface OutboundRequestContext {
  readonly route: RouteConfig;
  readonly method: string;
  readonly path: string;
  /** Flat `[name, value, …]` list that will be sent; identity headers were already stripped (passport kept). */
  readonly headers: string[];
  /** Set by a hook whose headers depend on the credentials (CredentialBinding). */
  binding?: CredentialBinding;
}

/** May edit `context.headers` in place (e.g. replace `x-meshauth-passport` by a wrapped one). */
export type OnOutboundRequest = (context: OutboundRequestContext) => void | Promise<void>;

/**
 * What a hook's throw, rejection or failed rebind is answered with: its own MeshauthError, or any other failure as an
 * invalid passport (the passport wrapper is the hook).
 */
export function hookRejection(error: unknown): MeshauthError {
  return isMeshauthError(error)
    ? error
    : new MeshauthError('MESHAUTH_ERR_PASSPORT_INVALID', 'outbound hook failed', { cause: error });
}
