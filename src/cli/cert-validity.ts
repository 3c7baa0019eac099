// The validity window of the certificate `cert renew` and `cert token` authenticate with, checked before the CA is
// dialled: the CA refuses one outside it with "credential rejected" and tells why to its own log alone.
import { MeshauthError } from '../errors/index.js';
import type { x509 } from '../pki/index.js';
import { humanDuration } from './human-duration.js';

/** What the command asks the CA for with the certificate, for the message. */
export type CertificateUse = 'renew' | 'token';

const WHY_EXPIRED: Readonly<Record<CertificateUse, string>> = {
  renew: 'renewal authenticates to the CA with the current certificate, so an expired one cannot renew',
  token: 'the CA authenticates a token request with this certificate, so an expired one cannot get a token',
};

/**
 * Throws MESHAUTH_ERR_SVID_EXPIRED or MESHAUTH_ERR_SVID_NOT_YET_VALID naming `certFile`, when and what to do, unless
 * `leaf` is valid at `now`.
 */
export function assertCertificateValid(
  certFile: string,
  leaf: x509.X509Certificate,
  now: Date,
  use: CertificateUse,
): void {
  const sinceExpiry = now.getTime() - leaf.notAfter.getTime();
  if (sinceExpiry >= 0) {
    throw new MeshauthError(
      'MESHAUTH_ERR_SVID_EXPIRED',
      `${certFile} expired at ${leaf.notAfter.toISOString()} (${humanDuration(sinceExpiry)} ago): ${WHY_EXPIRED[use]}; ` +
        'get a new SVID with `meshauth cert request` (a new join token from `meshauth ca token create`) or ' +
        '`meshauth ca issue`',
      { reason: 'client_cert_expired' },
    );
  }
  const untilStart = leaf.notBefore.getTime() - now.getTime();
  if (untilStart > 0) {
    // The CA back-dates every certificate by a minute: one that starts later by this host's clock means the clocks
    // of this host and of the CA that issued it disagree, and the CA refuses it until then.
    throw new MeshauthError(
      'MESHAUTH_ERR_SVID_NOT_YET_VALID',
      `${certFile} is not valid before ${leaf.notBefore.toISOString()} (${humanDuration(untilStart)} from now by ` +
        `this host's clock, ${now.toISOString()}), so the CA refuses it until then: check the clocks of this host ` +
        'and of the CA',
      { reason: 'client_cert_not_yet_valid' },
    );
  }
}
