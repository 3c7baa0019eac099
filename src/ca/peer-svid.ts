// Client authentication by X509-SVID (renewal; tls_client_auth for `POST /v1/token`): the
// chain the client presented in the TLS handshake, validated here against the CA's own bundle. The TLS server lets
// certificate-less connections through (join-token bootstrap), so this check is the only gate.
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { MeshauthError } from '../errors/index.js';
import type { SpiffeId } from '../identity/index.js';
import { parseCertificateDerOnce, type TrustBundle, validateX509SvidDer } from '../pki/index.js';
import { peerChainDer } from '../tls/index.js';

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

/**
 * The chain the client sent: its leaf and the certificates after it, as DER. Read through getPeerCertificate(true)
 * (peerChainDer), never getPeerX509Certificate(): on a server socket that call leaks one native certificate per call
 * (src/tls/verified-peer.ts says how), about 10 KB of `ca serve` RSS per renewal on Node 20. This server sets no
 * `ca`, so OpenSSL builds no chain of its own: Node links each certificate the client sent to the one that issued
 * it, leaf first, and leaves out any that issue nothing in the chain. Kept per connection: a keep-alive client sends
 * several requests on one, and each read converts every certificate into an object.
 */
function peerChain(socket: TLSSocket): PeerChain | undefined {
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  const cached = chains.get(socket);
  if (cached !== undefined) return cached;
  const [leaf, ...issuers] = peerChainDer(socket);
  if (leaf === undefined) return undefined;
  const chain = { leaf, issuers: issuers.slice(0, MAX_PEER_CHAIN - 1) };
  chains.set(socket, chain);
  return chain;
}

interface PeerChain {
  readonly leaf: Buffer;
  readonly issuers: readonly Buffer[];
}

const chains = new WeakMap<TLSSocket, PeerChain>();
