// When the CA's own certificates need attention (pure): the point at which a self-managed CA replaces its
// intermediate (half its life, counted from issuance, not from the back-dated notBefore), and whether a certificate
// is close enough to expiry to warn about. Leaves are clamped to the intermediate, so an expired intermediate means
// no usable SVID anywhere: the warning starts a week ahead.
import { BACKDATE_MS } from '../pki/index.js';

export const EXPIRY_WARNING_MS = 7 * 24 * 3600_000;

export interface Validity {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** Issuance time + half the remaining lifetime at issuance. */
export function halfLifeOf(cert: Validity): Date {
  const issuedAt = Math.min(cert.notBefore.getTime() + BACKDATE_MS, cert.notAfter.getTime());
  return new Date(issuedAt + (cert.notAfter.getTime() - issuedAt) / 2);
}

export function expiresSoon(cert: Validity, now: Date): boolean {
  return cert.notAfter.getTime() - now.getTime() <= EXPIRY_WARNING_MS;
}
