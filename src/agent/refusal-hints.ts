// What the agent's log says to do when the CA refuses its credential (401): a refused renewal and a refused bootstrap
// are not outages to wait out, and the fix depends on what came before. Words only: no I/O, no state.
import { JOIN_TOKEN_SINGLE_USE } from './ca-client.js';

const NEW_JOIN_TOKEN = 'meshauth ca token create --id <spiffe-id>';
const SA_TOKEN_REREAD =
  'a Kubernetes service-account token file is refreshed by the kubelet and re-read on each attempt';

/**
 * What the refused bootstrap followed: `nothing` (no SVID was ever obtained, so the token was never good here:
 * unknown, expired, or spent by another start), `expiry` (the SVID ran out, the token was spent on it), or
 * `refused_renewal` (the CA refused to renew an SVID still in date, e.g. under a retired root).
 */
export type RefusedBootstrapAfter = 'nothing' | 'expiry' | 'refused_renewal';

/** The warn line of a bootstrap the CA refused with 401. */
export function bootstrapRefusedMessage(after: RefusedBootstrapAfter): string {
  // The agent reads the token file at every attempt: a new token brings it back without a restart.
  const fix = `write a new join token (\`${NEW_JOIN_TOKEN}\`) to the token file, the agent reads it at its next attempt (${SA_TOKEN_REREAD})`;
  if (after === 'nothing') {
    return (
      'the CA refused the bootstrap credential and no SVID was ever obtained: a join token that is unknown, expired ' +
      `or already used cannot bootstrap (${JOIN_TOKEN_SINGLE_USE}); ${fix}`
    );
  }
  const when = after === 'expiry' ? 'the SVID expired' : 'the CA refused to renew the current SVID';
  return `the CA rejected the bootstrap credential: ${JOIN_TOKEN_SINGLE_USE} after ${when}; ${fix}`;
}

/** The hint on a renewal the CA refused with 401: the agent's next attempt is a bootstrap with the token file. */
export function renewalRefusedHint(tokenFile: string): string {
  return (
    'the CA no longer accepts this SVID (its root was retired, for one); the agent tries a bootstrap with the token ' +
    `file ${tokenFile} at its next attempt: a Kubernetes service-account token is re-issued by the kubelet and works as it ` +
    `is, a join token is single-use: write a new one (\`${NEW_JOIN_TOKEN}\`) to that file, no restart needed`
  );
}
