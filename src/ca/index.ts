export { CaAuthority, type IssuedSvid, type IssueRequest } from './authority.js';
export { type CaPaths, caPaths, writeFileAtomic } from './ca-files.js';
export {
  type CaConnection,
  fetchBundle,
  type RequestSvidOptions,
  requestSvid,
  type SvidResponse,
} from './client.js';
export { type CreateJoinTokenOptions, consumeJoinToken, createJoinToken, hashToken } from './join-tokens.js';
export { httpsUrl, parseListenAddress } from './listen-address.js';
export { type IssueOfflineOptions, issueOffline } from './offline-issue.js';
export { activateNextRoot, publishNextRoot, type RotateResult, rotateIntermediate } from './rotate.js';
export { type CaServer, type CaServerOptions, startCaServer } from './server.js';
export { toSpiffeBundle } from './spiffe-bundle.js';
export { type CaMaterial, type InitCaOptions, initCa, loadCaMaterial } from './store.js';
