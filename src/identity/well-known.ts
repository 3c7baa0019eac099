// SPIFFE IDs with a fixed meaning inside meshauth.

import { SpiffeId } from './spiffe-id.js';
import type { TrustDomain } from './trust-domain.js';

/** Path of the CA's own serving identity: `spiffe://<td>/meshauth/ca`. Agents accept the CA only under this ID. */
export const CA_ID_PATH = '/meshauth/ca';

export function caSpiffeId(trustDomain: TrustDomain): SpiffeId {
  return SpiffeId.parse(`${trustDomain.idString}${CA_ID_PATH}`);
}
