// Node TLS adapters: the mesh TLS profile, the verified peer of a socket, SPIFFE server authentication.

export { type ClientContext, ClientTlsContext } from './client-context.js';
export {
  closedBeforeHandshake,
  HANDSHAKE_FAILURE_REASONS,
  type HandshakeFailureReason,
  peerConnectFailureReason,
  svidFailureReason,
  tlsClientErrorReason,
} from './handshake-failure.js';
export { answerIdentityCheckWithLeaf, type LeafCertificate } from './leaf-only-identity-check.js';
export {
  type ConnectPhase,
  connectPeer,
  PeerConnectError,
  type PeerConnection,
  type PeerConnectOptions,
} from './peer-connector.js';
export {
  NOT_VALID_YET_BY_THIS_CLOCK,
  type ServerIdentityCheck,
  spiffeServerIdentity,
} from './spiffe-server-identity.js';
export {
  clientSecureContext,
  credentialOptions,
  mtlsServerOptions,
  protocolOptions,
  type TlsProfile,
  withoutResumption,
} from './tls-profile.js';
export {
  linkedChainDer,
  peerChainDer,
  peerChainDerOf,
  peerOf,
  peerSvidInvalid,
  serverChainError,
  type VerifiedPeer,
  verifyPeer,
} from './verified-peer.js';
