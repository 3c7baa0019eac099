// Configuration: zod schemas, environment variable names, load → validate → freeze.
export { bundleTrustDomains, checkBundleTrustDomain } from './bundle-trust-domain.js';
export { durationInRange, formatDuration, parseDuration } from './duration.js';
export * from './env-names.js';
export { formatHostPort, type HostPort, isLoopbackHost, parseHostPort } from './host-port.js';
export { configKeyName, envOrigin, keyPath, namedByConfig } from './key-path.js';
export {
  type Environment,
  loadSidecarConfig,
  sidecarConfigFromObject,
  unknownMeshauthVariables,
} from './load-sidecar-config.js';
export { MAX_CONFIG_BYTES, readConfigText } from './read-config-file.js';
export { MAX_SETTING_FILE_BYTES, readSettingFile, type SettingFile } from './read-setting-file.js';
export {
  type ExpectedIds,
  expectedIdsFor,
  HOST_TEMPLATE,
  idIsExpected,
  parseEgressEntry,
  type RouteAddress,
  type RouteEntry,
  RouteTable,
  routeAddressFor,
} from './route-match.js';
export {
  type AppProbeKind,
  type AppProbeTarget,
  type EndUserSettings,
  type ExternalListenerSettings,
  INBOUND_LIMIT_DEFAULTS,
  type InboundLimitSettings,
  OUTBOUND_LIMIT_DEFAULTS,
  type OutboundLimitSettings,
  type RouteConfig,
  resolveEndUser,
  resolveSidecarConfig,
  SIDECAR_DEFAULTS,
  type SidecarConfig,
  type TcpRouteConfig,
} from './sidecar-config.js';
export {
  type EndUserFile,
  type ExternalFile,
  endUserSchema,
  externalSchema,
  type InboundLimitsFile,
  inboundLimitsSchema,
  routeSchema,
  type SidecarFile,
  sidecarSchema,
  spiffeIdSchema,
  tcpRouteSchema,
} from './sidecar-schema.js';
export { parseYamlText } from './yaml-text.js';
