// What `meshauth cert …` reports when the CA refuses a call: the CA client's error, with what a one-shot command
// knows and the agent does not (the join token just sent is spent; the --bundle is input to fix, not a CA to retry).
import { caChainUntrusted, JOIN_TOKEN_SINGLE_USE } from '../agent/ca-client.js';
import { isMeshauthError, MeshauthError } from '../errors/index.js';

export interface CaCallContext {
  /** The call carried a join token (`cert request`). */
  readonly joinToken: boolean;
}

/**
 * The error to report for `error`, thrown by a call to the CA:
 * - a CA certificate that does not chain to the --bundle: MESHAUTH_ERR_SVID_UNKNOWN_CA, exit 2. The CA client keeps
 *   it MESHAUTH_ERR_CA_UNAVAILABLE for the agent, which retries; here nothing but other input mends it, and exit 1
 *   read as "try again later".
 * - a join token refused: the CA's "credential rejected", and why a new token is needed.
 */
export function caRefusal(error: unknown, context: CaCallContext): unknown {
  if (caChainUntrusted(error)) {
    const refused = error as MeshauthError;
    return new MeshauthError('MESHAUTH_ERR_SVID_UNKNOWN_CA', refused.message, {
      reason: 'ca_untrusted',
      cause: refused,
    });
  }
  if (context.joinToken && isMeshauthError(error, 'MESHAUTH_ERR_CA_UNAUTHENTICATED')) {
    return new MeshauthError(
      error.code,
      `${error.message}: the CA refused the join token (unknown, expired or used): ${JOIN_TOKEN_SINGLE_USE}; ` +
        'create a new one with `meshauth ca token create --id <spiffe-id>`',
      {
        ...(error.reason === undefined ? {} : { reason: error.reason }),
        ...(error.detail === undefined ? {} : { detail: error.detail }),
        cause: error,
      },
    );
  }
  return error;
}
