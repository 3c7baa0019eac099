// The outbound end of identity propagation: when the app forwards the `x-meshauth-passport` it received,
// the sidecar replaces it with a link for the next hop (signed with its own SVID, `aud` = the route's SPIFFE ID,
// `act` extended), one link per received passport and next hop for as long as it may be shared (sharedLink). Only
// passports this sidecar itself received or minted can be wrapped; a refusal is counted in
// meshauth_passport_verifications_total under its reason, beside the inbound's verification results.
import type { CredentialHolder, Credentials } from '../../agent/index.js';
import { PASSPORT_HEADER, type ReceivedPassport, type SharedLink, sharedLink } from '../../authn/passport/index.js';
import { signingMaterial } from '../../authn/passport/signer-cache.js';
import { MeshauthError } from '../../errors/index.js';
import type { SpiffeId } from '../../identity/index.js';
import type { Metrics } from '../../telemetry/index.js';
import type { PassportStore } from '../passport-store.js';
import type { OnOutboundRequest } from './outbound-hooks.js';

export interface PassportWrapperOptions {
  readonly holder: CredentialHolder;
  readonly store: PassportStore;
  readonly metrics: Metrics;
  readonly now: () => Date;
}

/**
 * Why a passport from the app was not wrapped (the `reason` of MESHAUTH_ERR_PASSPORT_INVALID and the `result` of
 * meshauth_passport_verifications_total): `format` (more than one passport header), `unknown_passport` (not received
 * by this sidecar, or expired), `route_audience` (the route names no single peer to address a link to).
 */
export type PassportWrapRefusal = 'format' | 'unknown_passport' | 'route_audience';

export function passportWrapper(options: PassportWrapperOptions): OnOutboundRequest {
  const { holder, store, metrics, now } = options;
  // The links handed out per received passport (the store keeps one object per passport while it may be wrapped) and
  // next hop: held weakly, so they go with the store's entry.
  const links = new WeakMap<ReceivedPassport, Map<string, SharedLink>>();
  // The signing key of a new SVID is derived before the holder switches to it: a key that cannot sign passports
  // refuses the rotation instead of failing every request that carries one afterwards.
  holder.prepare((next) => {
    signingMaterial(next.svid);
    return noCommit;
  });
  // Failures are returned as a rejected promise (the listener answers with the error); success stays synchronous.
  return (context) => {
    try {
      wrap(context);
      return undefined;
    } catch (error) {
      return Promise.reject(error);
    }
  };

  function wrap(context: Parameters<OnOutboundRequest>[0]): void {
    const headers = context.headers;
    let index = -1;
    for (let i = 0; i < headers.length; i += 2) {
      if ((headers[i] as string).toLowerCase() !== PASSPORT_HEADER) continue;
      if (index !== -1) throw refuse('format', 'the app sent more than one passport header');
      index = i;
    }
    if (index === -1) return;
    const at = now();
    const received = store.lookup(headers[index + 1] as string, at.getTime());
    if (received === undefined) {
      throw refuse('unknown_passport', 'the app forwarded a passport this sidecar did not receive, or it has expired');
    }
    // The link is addressed to one ID, so that ID must be the only peer the route accepts: with an ID pattern
    // (`/sa/*`, `{namespace}`) beside it, the connection may reach another workload, which would receive the end
    // user's origin without being its audience.
    const audience =
      context.route.ids.length === 1 && context.route.idPatterns.length === 0 ? context.route.ids[0] : undefined;
    if (audience === undefined) {
      throw refuse(
        'route_audience',
        `route ${context.route.host} must name exactly one SPIFFE ID and no ID pattern to carry a passport`,
      );
    }
    const credentials = holder.current;
    if (credentials === undefined) throw new MeshauthError('MESHAUTH_ERR_NOT_READY', 'no SVID yet');
    headers[index + 1] = linkFor(received, audience, credentials, at);
    context.binding = {
      credentials,
      // The connection the request leaves on presents other credentials (a rotation since): a link for its leaf,
      // dated as the first (the store's entry was checked then; a later date could outlive it).
      rebind: (next) => {
        headers[index + 1] = linkFor(received, audience, next, at);
      },
    };
  }

  function linkFor(received: ReceivedPassport, audience: SpiffeId, credentials: Credentials, at: Date): string {
    let byAudience = links.get(received);
    if (byAudience === undefined) {
      byAudience = new Map();
      links.set(received, byAudience);
    }
    const key = audience.toString();
    const previous = byAudience.get(key);
    const link = sharedLink(previous, received, audience, credentials.svid, at);
    if (link !== previous) byAudience.set(key, link);
    return link.value;
  }

  // Counted where it is decided, as the inbound counts its verifications (end-user-authenticator.ts): the request
  // counters only say a passport was refused outbound, and a passport dashboard must also see an app that sends
  // passports it never received. Refusals only: a wrapped request adds no count.
  function refuse(reason: PassportWrapRefusal, message: string): MeshauthError {
    metrics.passportVerifications.inc({ result: reason });
    return new MeshauthError('MESHAUTH_ERR_PASSPORT_INVALID', message, { reason });
  }
}

function noCommit(): void {}
