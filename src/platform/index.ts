// Thin helpers over Node itself that several folders share: binding a listener, reading a small local file, acting at
// a peer certificate's expiry, an HTTP/2 client request without node:http2's per-call overheads, naming an HTTP/2
// session error, one reload at a time, random bytes drawn per request, whether a process recorded in a file still
// runs (process-identity.ts), and (node-internals.ts) the Node and undici behaviours relied on beyond their public
// API, one place to check on an upgrade.

export { clientAddress, clientSourceKey } from './client-source.js';
export { addTo } from './counts.js';
export { fileVersions } from './file-versions.js';
export {
  type H2HeaderList,
  headerListSize,
  headerObject,
  RAW_REQUEST_SINCE,
  RAW_RESPONSE_SINCE,
  requestHeadersOf,
  responseHeadersOf,
} from './h2-header-list.js';
export { MESH_PING_GRACE_MS, whenSessionSilent } from './h2-liveness.js';
export { bindInScope, requestStream } from './h2-request.js';
export { clientWentAway, type H2SessionErrorReason, h2SessionErrorReason } from './h2-session-error.js';
export { loadUndici, undiciIfLoaded } from './lazy-undici.js';
export { bindOptions, isEveryAddressIpv6, listenOn, REUSE_PORT_MIN_NODE, reusePortSupported } from './listen.js';
export { HTTP_METHODS, HTTPParser, type LlhttpParser, llhttpParser, releaseParser } from './llhttp.js';
export {
  answerClosesConnection,
  firstClientErrorOnly,
  keepReadingAfterEnd,
  pendingResponse,
  startTimeoutSweeper,
  sweepTimeoutsWhileConnected,
  tcpSocketOf,
  UNDICI_CODES,
  UNDICI_PARSER_ERROR_NAME,
} from './node-internals.js';
export { answerOnSocket, expectationUnsupported, nodeRefusal, triageClientError } from './node-refusal.js';
export { type NodeReleases, nodeHas } from './node-version.js';
export { atPeerExpiry, MAX_TIMER_MS } from './peer-expiry.js';
export {
  type ProcessIdentity,
  type ProcessState,
  processIdentityOf,
  processState,
  sameProcess,
  thisProcess,
} from './process-identity.js';
export { pooledRandomBytes } from './random-bytes.js';
export { type RegularFile, readRegularFile } from './regular-file.js';
export { SingleFlight } from './single-flight.js';
export {
  acceptMtls,
  acceptWithOptionalCertificate,
  type MtlsAcceptOptions,
  mtlsSecureContext,
  type OptionalCertificateAcceptOptions,
} from './tls-accept.js';
export { UnansweredResponses } from './unanswered-responses.js';
