// Node's TLS client calls `socket.getPeerCertificate(true)` once per handshake, only to hand the result to
// checkServerIdentity. That call turns every certificate of the peer's chain, up to the root, into a JavaScript
// record (names, key, three fingerprints, links): about a tenth of an agent's CPU per call to the CA. Every identity
// check of meshauth reads only the leaf's DER, so for that one call a socket can answer with the leaf's record alone.
import type { PeerCertificate, TLSSocket } from 'node:tls';

/** What meshauth's checkServerIdentity functions read of the server's certificate. */
export type LeafCertificate = Pick<PeerCertificate, 'raw'> & Partial<Pick<PeerCertificate, 'fingerprint256'>>;

/**
 * The socket's next `getPeerCertificate(true)` (Node's own, for checkServerIdentity) returns the leaf's record
 * without its issuer chain, as `getPeerCertificate()` does; from then on the socket's own method answers every call.
 * Node skips that call when OpenSSL refused the chain or the session was resumed: the next caller's `true` then gets
 * the leaf alone, once. Call it on a socket whose handshake has not ended: right after tls.connect, or on the
 * 'socket' event of a request that opens its own connection (`agent: false`).
 */
export function answerIdentityCheckWithLeaf(socket: TLSSocket): void {
  const leafOnly = (): PeerCertificate => {
    Reflect.deleteProperty(socket, 'getPeerCertificate');
    return socket.getPeerCertificate(false);
  };
  Object.defineProperty(socket, 'getPeerCertificate', { value: leafOnly, configurable: true, writable: true });
}
