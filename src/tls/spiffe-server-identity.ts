// Server authentication for outbound mTLS by SPIFFE ID instead of host name: Node's
// default checkServerIdentity matches DNS names, which SVIDs do not carry; this one checks the leaf's SPIFFE
// rules and that its ID is one the route expects (or any ID of the trust domain when the route names none). The
// certificate is parsed once per exact DER (a TCP tunnel is a TLS connection of its own, so the same peer leaf comes
// back with every tunnel); the checks, the validity period against `now` included, run at every handshake.
import { MeshauthError } from '../errors/index.js';
import type { SpiffeId, TrustDomain } from '../identity/index.js';
import { checkSvidLeaf, parseCertificateDerOnce } from '../pki/index.js';
import type { LeafCertificate } from './leaf-only-identity-check.js';

export type ServerIdentityCheck = (host: string, cert: LeafCertificate) => Error | undefined;

/**
 * What a peer SVID refused as not valid yet says about this host: the CA backdates every SVID by a minute, so by
 * this clock it almost always runs behind the CA's. Both directions log it in these words.
 */
export const NOT_VALID_YET_BY_THIS_CLOCK =
  'not valid yet by this clock (clock skew suspected: this host is likely behind the CA by over a minute)';

/**
 * Returns a `checkServerIdentity` for tls.connect. OpenSSL has verified the chain against `ca` before it runs.
 * `onVerified` receives the server's ID (used as the outbound `peer_id` label) and the leaf's notAfter (ms since
 * the epoch), so the caller need not read the certificate again.
 */
export function spiffeServerIdentity(
  trustDomain: TrustDomain,
  allowed: readonly SpiffeId[] | ((id: SpiffeId) => boolean),
  onVerified?: (id: SpiffeId, notAfterMs: number) => void,
  now: () => Date = () => new Date(),
): ServerIdentityCheck {
  return (_host, cert) => {
    let id: SpiffeId;
    let notAfterMs: number;
    try {
      if (cert?.raw === undefined) throw new Error('no server certificate');
      const leaf = parseCertificateDerOnce(cert.raw);
      id = checkSvidLeaf(leaf, trustDomain, now());
      notAfterMs = leaf.notAfter.getTime();
    } catch (cause) {
      const early = cause instanceof MeshauthError && cause.reason === 'not_yet_valid';
      return new MeshauthError(
        'MESHAUTH_ERR_PEER_IDENTITY',
        early ? `peer certificate is ${NOT_VALID_YET_BY_THIS_CLOCK}` : 'peer certificate is not a valid SVID',
        { reason: 'peer_svid_invalid', cause, ...(early ? { detail: { localTime: now().toISOString() } } : {}) },
      );
    }
    const accepted =
      typeof allowed === 'function' ? allowed(id) : allowed.length === 0 || allowed.some((a) => a.equals(id));
    if (!accepted) {
      return new MeshauthError('MESHAUTH_ERR_PEER_IDENTITY', `peer presented ${id}, not an ID the route allows`, {
        reason: 'peer_id_mismatch',
        detail: { peer: id.toString(), ...(typeof allowed === 'function' ? {} : { allowed: allowed.map(String) }) },
      });
    }
    onVerified?.(id, notAfterMs);
    return undefined;
  };
}
