// The inbound end-user hook. A request arriving with a passport is checked against the mTLS peer (the
// link), the trust bundle and the vouchers (the origin); a request arriving with a bearer token from a configured
// issuer is validated and the token is replaced by a fresh origin passport (this sidecar vouches for the user).
// Either way the app gets `x-meshauth-passport` (to forward downstream) and `x-meshauth-user`, and the raw token
// stops here unless `forwardOriginalToken` is set. With that set, a token beside a passport reaches the app only once
// verified here and found to name the passport's user: any peer holding a passport could otherwise hand the app a
// token nobody checked (forged, expired, someone else's) next to a verified `x-meshauth-user`.
import type { CredentialHolder } from '../../agent/index.js';
import { bearerChallenge } from '../../authn/bearer-challenge.js';
import { type EndUser, userHeaderValue } from '../../authn/end-user.js';
import type { EndUserVerifier } from '../../authn/index.js';
import { PASSPORT_HEADER, verifyPassport } from '../../authn/passport/index.js';
import { tokenInvalid } from '../../authn/token-rejection.js';
import type { EndUserSettings } from '../../config/index.js';
import { isMeshauthError, MeshauthError } from '../../errors/index.js';
import type { Metrics } from '../../telemetry/index.js';
import type { PassportStore } from '../passport-store.js';
import type { AuthenticateEndUser, EndUserOutcome, InboundRequestView } from './inbound-hooks.js';
import { passportOwner, passportStoreExpiry, USER_HEADER, vouchForUser, vouchingOptions } from './vouch-for-user.js';

export interface EndUserAuthenticatorOptions {
  readonly settings: EndUserSettings;
  readonly verifier: EndUserVerifier;
  readonly holder: CredentialHolder;
  readonly store: PassportStore;
  readonly metrics: Metrics;
  readonly now: () => Date;
  readonly maxDepth?: number;
}

export function endUserAuthenticator(options: EndUserAuthenticatorOptions): AuthenticateEndUser {
  const { settings, verifier, holder, store, metrics, now } = options;
  const vouchers: ReadonlySet<string> = new Set(settings.vouchers);
  const dropAuthorization = !settings.forwardOriginalToken;
  const vouching = vouchingOptions(settings);

  const fromPassport = (view: InboundRequestView, value: string): EndUserOutcome | Promise<EndUserOutcome> => {
    const credentials = holder.current;
    if (credentials === undefined) return { reject: new MeshauthError('MESHAUTH_ERR_NOT_READY', 'no SVID yet') };
    const at = now();
    try {
      const verified = verifyPassport(value, {
        self: credentials.svid.id,
        peerId: view.peer.id,
        peerKey: view.peer.publicKey,
        peerThumbprint: view.peer.thumbprint,
        bundle: credentials.bundle,
        vouchers,
        claims: settings.claims,
        now: at,
        ...(options.maxDepth === undefined ? {} : { maxDepth: options.maxDepth }),
      });
      metrics.passportVerifications.inc({ result: 'ok' });
      store.remember(
        verified,
        passportStoreExpiry(verified.userExpiresAt, verified.originExpiresAt, at.getTime()),
        passportOwner(verified.user, view.peer.idString),
      );
      const outcome = {
        user: verified.user,
        chain: verified.chain.slice(0, -1), // the hops before the peer (AuthzRequest.chain)
        headers: { [PASSPORT_HEADER]: value, [USER_HEADER]: userHeaderValue(verified.user) },
        dropAuthorization,
      };
      return dropAuthorization ? outcome : withForwardedToken(view, outcome, verified.user);
    } catch (error) {
      if (!isMeshauthError(error)) throw error;
      // Counted here; the listener's rejection line (code, reason, peer) is its one log line.
      metrics.passportVerifications.inc({ result: error.reason ?? 'invalid' });
      return { reject: error };
    }
  };

  const fromBearer = async (view: InboundRequestView): Promise<EndUserOutcome> => {
    let user: EndUser | undefined;
    try {
      // Vouched for below: refused as expired or claims_too_large rather than minting a passport (vouchingOptions).
      user = await verifier.authenticate(view.rawHeaders ?? view.headers, vouching);
    } catch (error) {
      if (!isMeshauthError(error)) throw error;
      return { reject: error, rejectHeaders: bearerChallenge(error).headers };
    }
    if (user === undefined) return NO_USER;
    return vouchForUser(user, { holder, store, now, dropAuthorization });
  };

  /** The passport's outcome, with the request's bearer token verified against its user (forwardOriginalToken). */
  const withForwardedToken = async (
    view: InboundRequestView,
    outcome: EndUserOutcome,
    passportUser: EndUser,
  ): Promise<EndUserOutcome> => {
    if (view.headers.authorization === undefined) return outcome;
    let tokenUser: EndUser;
    try {
      // Not verifier.authenticate(): its `required` is about a request with no end user at all, and this one has the
      // passport's. Another scheme (Basic for the app) is dropped below, as without forwardOriginalToken.
      const token = verifier.bearerOf(view.rawHeaders ?? view.headers);
      if (token === undefined) return { ...outcome, dropAuthorization: true };
      tokenUser = await verifier.verify(token);
    } catch (error) {
      if (!isMeshauthError(error)) throw error;
      return { reject: error, rejectHeaders: bearerChallenge(error).headers };
    }
    if (tokenUser.iss === passportUser.iss && tokenUser.sub === passportUser.sub) return outcome;
    const error = tokenInvalid('not_passport_user', 'the token names another user than the passport', {
      issuer: tokenUser.iss.slice(0, 200),
    });
    metrics.tokenVerifications.inc({ result: 'not_passport_user' });
    return { reject: error, rejectHeaders: bearerChallenge(error).headers };
  };

  return async (view) => {
    const passport = view.headers[PASSPORT_HEADER];
    if (typeof passport === 'string') return fromPassport(view, passport);
    if (Array.isArray(passport)) {
      return {
        reject: new MeshauthError('MESHAUTH_ERR_PASSPORT_INVALID', 'more than one passport header', {
          reason: 'format',
        }),
      };
    }
    return fromBearer(view);
  };
}

const NO_USER: EndUserOutcome = Object.freeze({});
