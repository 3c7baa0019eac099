// The external listener's client authentication: every request must carry a valid bearer token
// of a configured issuer (client-credentials tokens included); a passport is never accepted from outside the
// mesh. A valid token becomes a fresh origin passport, minted and remembered by vouchForUser exactly as on the mTLS inbound, so the app can forward it downstream through its outbound sidecar.
import type { CredentialHolder } from '../../agent/index.js';
import { bearerChallenge } from '../../authn/bearer-challenge.js';
import type { EndUser, EndUserVerifier } from '../../authn/index.js';
import { PASSPORT_HEADER } from '../../authn/passport/index.js';
import type { EndUserSettings } from '../../config/index.js';
import { isMeshauthError, MeshauthError } from '../../errors/index.js';
import type { Metrics } from '../../telemetry/index.js';
import type { PassportStore } from '../passport-store.js';
import type { AuthenticateExternalClient, ExternalRequestView } from './external-hooks.js';
import type { EndUserOutcome } from './inbound-hooks.js';
import { vouchForUser, vouchingOptions } from './vouch-for-user.js';

export interface ExternalAuthenticatorOptions {
  readonly settings: EndUserSettings;
  /** The inbound's verifier (one JWKS cache per issuer); its `required` flag is ignored here: a token always is. */
  readonly verifier: EndUserVerifier;
  readonly holder: CredentialHolder;
  readonly store: PassportStore;
  readonly metrics: Metrics;
  readonly now: () => Date;
}

export function externalAuthenticator(options: ExternalAuthenticatorOptions): AuthenticateExternalClient {
  const { settings, verifier, holder, store, metrics, now } = options;
  const dropAuthorization = !settings.forwardOriginalToken;
  const vouching = vouchingOptions(settings);

  return async (view: ExternalRequestView): Promise<EndUserOutcome> => {
    // Passports are mesh-internal (signed by a peer's SVID, bound to the mTLS link): outside there is no link to
    // bind to, so one arriving here is refused before the token is even looked at (the listener logs it once).
    if (view.headers[PASSPORT_HEADER] !== undefined) {
      return {
        reject: new MeshauthError('MESHAUTH_ERR_PASSPORT_INVALID', 'passports are not accepted from outside the mesh', {
          reason: 'external',
        }),
      };
    }
    let user: EndUser | undefined;
    try {
      // Vouched for below: refused as expired or claims_too_large rather than minting a passport (vouchingOptions).
      user = await verifier.authenticate(view.rawHeaders ?? view.headers, vouching);
      if (user === undefined) {
        // The verifier lets a token-less request through when `inbound.endUser.required` is false; here it never is.
        metrics.tokenVerifications.inc({ result: 'missing' });
        throw new MeshauthError('MESHAUTH_ERR_TOKEN_MISSING', 'bearer token required on the external listener', {
          reason: 'missing',
        });
      }
    } catch (error) {
      if (!isMeshauthError(error)) throw error;
      return { reject: error, rejectHeaders: bearerChallenge(error).headers };
    }
    return vouchForUser(user, { holder, store, now, dropAuthorization });
  };
}
