// SPIFFE IDs with a fixed meaning inside meshauth.

import { MeshauthError } from '../errors/index.js';
import { SpiffeId } from './spiffe-id.js';
import type { TrustDomain } from './trust-domain.js';

/** Path of the CA's own serving identity: `spiffe://<td>/meshauth/ca`. Agents accept the CA only under this ID. */
export const CA_ID_PATH = '/meshauth/ca';

export function caSpiffeId(trustDomain: TrustDomain): SpiffeId {
  return SpiffeId.parse(`${trustDomain.idString}${CA_ID_PATH}`);
}

/**
 * Refuses the CA's own ID where a workload ID is asked for (join tokens, `POST /v1/svid`, `ca issue`): agents accept
 * the CA by this ID alone, so a workload holding it could pose as the CA and collect every agent's bootstrap token.
 */
export function refuseCaId(id: SpiffeId, trustDomain: TrustDomain): void {
  // caSpiffeId(trustDomain) compared without building it: per SVID request. Paths are canonical (spiffe-id.ts).
  if (id.path === CA_ID_PATH && id.memberOf(trustDomain)) {
    throw new MeshauthError('MESHAUTH_ERR_SPIFFE_ID_INVALID', `${id} is the CA's own ID, not a workload ID`, {
      reason: 'reserved_id',
    });
  }
}
