// Client authentication by X509-SVID (SPEC §4 renewal; RFC 8705 §2.1 tls_client_auth for `POST /v1/token`): the
// chain the client presented in the TLS handshake, validated here against the CA's own bundle. The TLS server lets
// certificate-less connections through (join-token bootstrap), so this check is the only gate.
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { MeshauthError } from '../errors/index.js';
import type { SpiffeId } from '../identity/index.js';
import { parseCertificate, type TrustBundle, validateX509Svid, type x509 } from '../pki/index.js';

const MAX_PEER_CHAIN = 8;

/** The caller's SPIFFE ID, or MESHAUTH_ERR_CA_UNAUTHENTICATED with reason `no_credential` / `client_cert_<why>`. */
export function authenticatePeer(req: IncomingMessage, bundle: TrustBundle, now: Date, what: string): SpiffeId {
  const chain = peerChain(req.socket as TLSSocket);
  if (chain.length === 0) {
    throw new MeshauthError('MESHAUTH_ERR_CA_UNAUTHENTICATED', `${what}: no client certificate`, {
      reason: 'no_credential',
    });
  }
  try {
    return validateX509Svid(chain, bundle, now);
  } catch (error) {
    const reason = error instanceof MeshauthError ? (error.reason ?? 'invalid') : 'invalid';
    throw new MeshauthError(
      'MESHAUTH_ERR_CA_UNAUTHENTICATED',
      `client certificate rejected: ${(error as Error).message}`,
      { reason: `client_cert_${reason}`, cause: error },
    );
  }
}

/** The chain the client sent (leaf first), from Node's linked peer certificate objects. */
function peerChain(socket: TLSSocket): x509.X509Certificate[] {
  if (typeof socket.getPeerCertificate !== 'function') return [];
  const chain: x509.X509Certificate[] = [];
  const seen = new Set<string>();
  let current = socket.getPeerCertificate(true);
  while (current?.raw !== undefined && chain.length < MAX_PEER_CHAIN) {
    if (seen.has(current.fingerprint256)) break;
    seen.add(current.fingerprint256);
    chain.push(parseCertificate(new Uint8Array(current.raw)));
    current = current.issuerCertificate;
  }
  return chain;
}
