// Outbound mTLS connections to a peer sidecar, returning the socket together with the peer's verified SPIFFE ID.
// The server is authenticated by SPIFFE ID, never by host name: OpenSSL verifies the chain
// against the bundle in the context, then the leaf's SPIFFE rules and the expected-ID check run before any
// application byte is written. Failures carry `phase` so the caller knows no request byte left this process.
import { isIP } from 'node:net';
import { type SecureContext, type TLSSocket, connect as tlsConnect } from 'node:tls';
import type { SpiffeId, TrustDomain } from '../identity/index.js';
import { answerIdentityCheckWithLeaf } from './leaf-only-identity-check.js';
import { spiffeServerIdentity } from './spiffe-server-identity.js';
import { serverChainError } from './verified-peer.js';

export interface PeerConnectOptions {
  /** Where to connect (usually an IP address from the endpoint set). */
  readonly host: string;
  readonly port: number;
  /** SNI; only sent when it is a host name (an IP address sends none). Never used to authenticate. */
  readonly servername?: string;
  readonly secureContext: SecureContext;
  readonly trustDomain: TrustDomain;
  /** True for an ID the caller accepts; undefined: any ID of the trust domain. */
  readonly accepts: ((id: SpiffeId) => boolean) | undefined;
  readonly alpn: readonly string[];
  readonly timeoutMs: number;
  readonly now?: () => Date;
}

export interface PeerConnection {
  readonly socket: TLSSocket;
  readonly peerId: SpiffeId;
  /** `peerId.toString()`, for metric labels and logs. */
  readonly peerIdString: string;
  /** The ALPN protocol the peer chose, or false. */
  readonly protocol: string | false;
  /** The peer leaf's notAfter (ms since the epoch; NaN if unreadable): past it the connection no longer speaks for `peerId`. */
  readonly notAfterMs: number;
}

/** Where a connection attempt failed: always before any request byte was written. */
export type ConnectPhase = 'connect' | 'timeout' | 'identity';

export class PeerConnectError extends Error {
  override readonly name = 'PeerConnectError';
  readonly phase: ConnectPhase;
  readonly code: string | undefined;

  constructor(message: string, phase: ConnectPhase, cause: unknown) {
    super(message, { cause });
    this.phase = phase;
    const code = (cause as { code?: unknown } | undefined)?.code;
    this.code = typeof code === 'string' ? code : undefined;
  }
}

export function connectPeer(options: PeerConnectOptions): Promise<PeerConnection> {
  const { host, port, servername } = options;
  return new Promise<PeerConnection>((resolve, reject) => {
    let verified: SpiffeId | undefined;
    let verifiedNotAfterMs = Number.NaN;
    let identityError: Error | undefined;
    const check = spiffeServerIdentity(
      options.trustDomain,
      options.accepts ?? [],
      (id, notAfterMs) => {
        verified = id;
        verifiedNotAfterMs = notAfterMs;
      },
      options.now,
    );
    const socket = tlsConnect({
      host,
      port,
      secureContext: options.secureContext,
      ALPNProtocols: [...options.alpn],
      ...(servername !== undefined && isIP(servername) === 0 ? { servername } : {}),
      checkServerIdentity: (name, cert) => {
        const error = check(name, cert);
        identityError = error;
        return error;
      },
    });
    answerIdentityCheckWithLeaf(socket);
    const timer = setTimeout(() => {
      socket.destroy(new PeerConnectError(`connect to ${host}:${port} timed out`, 'timeout', undefined));
    }, options.timeoutMs);
    const onError = (error: Error) => {
      clearTimeout(timer);
      if (error instanceof PeerConnectError) reject(error);
      else if (identityError !== undefined && error === identityError) {
        reject(new PeerConnectError(error.message, 'identity', error));
      } else reject(new PeerConnectError(`connect to ${host}:${port} failed: ${error.message}`, 'connect', error));
    };
    socket.once('error', onError);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      if (verified === undefined) {
        // checkServerIdentity always runs for a verified chain; reaching here without it is a bug, fail closed.
        socket.destroy();
        reject(new PeerConnectError('peer identity was not verified', 'identity', undefined));
        return;
      }
      const chainError = serverChainError(socket);
      if (chainError !== undefined) {
        socket.destroy();
        reject(new PeerConnectError(chainError.message, 'identity', chainError));
        return;
      }
      socket.setNoDelay(true);
      resolve({
        socket,
        peerId: verified,
        peerIdString: verified.toString(),
        protocol: socket.alpnProtocol ?? false,
        notAfterMs: verifiedNotAfterMs,
      });
    });
  });
}
