// Configuration: zod schemas, environment variable names, load → validate → freeze (SPEC §7, STYLE 6).
export { assertDurationInRange, formatDuration, parseDuration } from './duration.js';
export * from './env-names.js';
export { formatHostPort, type HostPort, isLoopbackHost, parseHostPort } from './host-port.js';
export { type Environment, loadSidecarConfig, sidecarConfigFromObject } from './load-sidecar-config.js';
export {
  type EndUserSettings,
  type ExternalListenerSettings,
  type RouteConfig,
  resolveSidecarConfig,
  SIDECAR_DEFAULTS,
  type SidecarConfig,
} from './sidecar-config.js';
export {
  type EndUserFile,
  type ExternalFile,
  endUserSchema,
  externalSchema,
  routeSchema,
  type SidecarFile,
  sidecarSchema,
} from './sidecar-schema.js';
