// Client authentication by X509-SVID (SPEC §4 renewal; RFC 8705 §2.1 tls_client_auth for `POST /v1/token`): the
// chain the client presented in the TLS handshake, validated here against the CA's own bundle. The TLS server lets
// certificate-less connections through (join-token bootstrap), so this check is the only gate.
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { MeshauthError } from '../errors/index.js';
import type { SpiffeId } from '../identity/index.js';
import { parseCertificateDerOnce, type TrustBundle, validateX509SvidDer } from '../pki/index.js';

const MAX_PEER_CHAIN = 8;

/** The caller's SPIFFE ID, or MESHAUTH_ERR_CA_UNAUTHENTICATED with reason `no_credential` / `client_cert_<why>`. */
export function authenticatePeer(req: IncomingMessage, bundle: TrustBundle, now: Date, what: string): SpiffeId {
  const chain = peerChain(req.socket as TLSSocket);
  if (chain === undefined) {
    throw new MeshauthError('MESHAUTH_ERR_CA_UNAUTHENTICATED', `${what}: no client certificate`, {
      reason: 'no_credential',
    });
  }
  try {
    // Parsing an intermediate can fail (OpenSSL read it in the handshake, @peculiar/x509 may not): that is a
    // rejected client certificate like any other, not an error of another kind.
    return validateX509SvidDer(chain.leaf, chain.issuers.map(parseCertificateDerOnce), bundle, now);
  } catch (error) {
    const reason = error instanceof MeshauthError ? (error.reason ?? 'invalid') : 'invalid';
    throw new MeshauthError(
      'MESHAUTH_ERR_CA_UNAUTHENTICATED',
      `client certificate rejected: ${(error as Error).message}`,
      { reason: `client_cert_${reason}`, cause: error },
    );
  }
}

/** The chain the client sent: the leaf's DER and the DER of the certificates after it. */
function peerChain(socket: TLSSocket): { leaf: Buffer; issuers: Buffer[] } | undefined {
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  const first = socket.getPeerCertificate(true);
  if (first?.raw === undefined) return undefined;
  const issuers: Buffer[] = [];
  const seen = new Set<string>([first.fingerprint256]);
  let current = first.issuerCertificate;
  while (current?.raw !== undefined && issuers.length + 1 < MAX_PEER_CHAIN) {
    if (seen.has(current.fingerprint256)) break;
    seen.add(current.fingerprint256);
    issuers.push(current.raw);
    current = current.issuerCertificate;
  }
  return { leaf: first.raw, issuers };
}
