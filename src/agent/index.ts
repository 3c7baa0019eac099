export { Agent, type AgentOptions } from './agent.js';
export {
  type BundleResponse,
  type CaConnection,
  caStatusOf,
  checkCaIdentity,
  fetchBundle,
  requestSvid,
  type SvidResponse,
} from './ca-client.js';
export { readBundleFile, readTokenFile } from './credential-files.js';
export {
  CredentialHolder,
  type Credentials,
  CredentialsApplyError,
  type CredentialsListener,
  type CredentialsPreparer,
  SVID_ROOT_NOT_IN_BUNDLE,
} from './credential-holder.js';
export { type BackoffOptions, renewalDelay, retryDelay, type SvidLifetime } from './schedule.js';
export { type AcceptOptions, acceptSvidResponse, parseBundle } from './svid-response.js';
