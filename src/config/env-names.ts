// The environment variables of `meshauth sidecar` (every config key also from `MESHAUTH_*`). One table,
// so the names are documented in one place and the loader, the docs and the tests read the same list.
// Environment values override the file. Objects (routes, endUser, external) are JSON; lists are comma-separated;
// booleans are true/false/1/0; durations are 500ms, 30s, 10m, 1h. The variables, one per key:
//   MESHAUTH_TRUST_DOMAIN trustDomain · MESHAUTH_CA_URL ca.url · MESHAUTH_CA_BUNDLE ca.bundle · MESHAUTH_CA_TOKEN ca.token
//   MESHAUTH_INBOUND_LISTEN inbound.listen · MESHAUTH_INBOUND_APP inbound.app · MESHAUTH_INBOUND_POLICY inbound.policy
//   MESHAUTH_INBOUND_TLS12 inbound.tls12 · MESHAUTH_INBOUND_APP_TIMEOUT inbound.appTimeout
//   MESHAUTH_INBOUND_END_USER inbound.endUser (JSON) · MESHAUTH_INBOUND_EXTERNAL inbound.external (JSON)
//   MESHAUTH_OUTBOUND_LISTEN outbound.listen
//   MESHAUTH_OUTBOUND_ROUTES outbound.routes (JSON) · MESHAUTH_OUTBOUND_EGRESS outbound.egress (list)
//   MESHAUTH_OUTBOUND_TIMEOUT outbound.timeout · MESHAUTH_OUTBOUND_HTTP2 outbound.http2
//   MESHAUTH_INBOUND_LIMITS inbound.limits (JSON) · MESHAUTH_INBOUND_TCP inbound.tcp (JSON)
//   MESHAUTH_OUTBOUND_DNS outbound.dns (JSON) · MESHAUTH_OUTBOUND_TCP outbound.tcp (JSON)
//   MESHAUTH_OUTBOUND_LIMITS outbound.limits (JSON)
//   MESHAUTH_ADMIN_LISTEN admin.listen · MESHAUTH_ADMIN_APP_PROBES admin.appProbes (JSON)
//   MESHAUTH_DRAIN_TIMEOUT drainTimeout (every duration at most 24d: duration.ts MAX_TIMER_DURATION_MS)
// MESHAUTH_CONFIG_YAML holds a whole sidecar.yaml inline (injection sets it); `--config FILE` wins over it.

export type EnvKind = 'string' | 'boolean' | 'list' | 'json';

export interface EnvBinding {
  /** The environment variable name. */
  readonly name: string;
  /** The config key path it sets, e.g. `inbound.listen`. */
  readonly path: readonly string[];
  readonly kind: EnvKind;
}

function bind(name: string, path: string, kind: EnvKind = 'string'): EnvBinding {
  return Object.freeze({ name, path: Object.freeze(path.split('.')), kind });
}

export const MESHAUTH_TRUST_DOMAIN = 'MESHAUTH_TRUST_DOMAIN';
export const MESHAUTH_CA_URL = 'MESHAUTH_CA_URL';
export const MESHAUTH_CA_BUNDLE = 'MESHAUTH_CA_BUNDLE';
export const MESHAUTH_CA_TOKEN = 'MESHAUTH_CA_TOKEN';
export const MESHAUTH_INBOUND_LISTEN = 'MESHAUTH_INBOUND_LISTEN';
export const MESHAUTH_INBOUND_APP = 'MESHAUTH_INBOUND_APP';
export const MESHAUTH_INBOUND_POLICY = 'MESHAUTH_INBOUND_POLICY';
export const MESHAUTH_INBOUND_TLS12 = 'MESHAUTH_INBOUND_TLS12';
export const MESHAUTH_INBOUND_APP_TIMEOUT = 'MESHAUTH_INBOUND_APP_TIMEOUT';
export const MESHAUTH_INBOUND_END_USER = 'MESHAUTH_INBOUND_END_USER';
export const MESHAUTH_INBOUND_EXTERNAL = 'MESHAUTH_INBOUND_EXTERNAL';
export const MESHAUTH_OUTBOUND_LISTEN = 'MESHAUTH_OUTBOUND_LISTEN';
export const MESHAUTH_OUTBOUND_ROUTES = 'MESHAUTH_OUTBOUND_ROUTES';
export const MESHAUTH_OUTBOUND_EGRESS = 'MESHAUTH_OUTBOUND_EGRESS';
export const MESHAUTH_OUTBOUND_TIMEOUT = 'MESHAUTH_OUTBOUND_TIMEOUT';
export const MESHAUTH_OUTBOUND_HTTP2 = 'MESHAUTH_OUTBOUND_HTTP2';
export const MESHAUTH_ADMIN_LISTEN = 'MESHAUTH_ADMIN_LISTEN';
export const MESHAUTH_DRAIN_TIMEOUT = 'MESHAUTH_DRAIN_TIMEOUT';
export const MESHAUTH_INBOUND_LIMITS = 'MESHAUTH_INBOUND_LIMITS';
export const MESHAUTH_INBOUND_TCP = 'MESHAUTH_INBOUND_TCP';
export const MESHAUTH_OUTBOUND_DNS = 'MESHAUTH_OUTBOUND_DNS';
export const MESHAUTH_OUTBOUND_TCP = 'MESHAUTH_OUTBOUND_TCP';
export const MESHAUTH_OUTBOUND_LIMITS = 'MESHAUTH_OUTBOUND_LIMITS';
export const MESHAUTH_ADMIN_APP_PROBES = 'MESHAUTH_ADMIN_APP_PROBES';
/** A whole sidecar.yaml, inline (not a key binding: it is the document the bindings apply to). */
export const MESHAUTH_CONFIG_YAML = 'MESHAUTH_CONFIG_YAML';

/** Every sidecar environment variable and the key it sets, in the order of the config keys. */
export const SIDECAR_ENV: readonly EnvBinding[] = Object.freeze([
  bind(MESHAUTH_TRUST_DOMAIN, 'trustDomain'),
  bind(MESHAUTH_CA_URL, 'ca.url'),
  bind(MESHAUTH_CA_BUNDLE, 'ca.bundle'),
  bind(MESHAUTH_CA_TOKEN, 'ca.token'),
  bind(MESHAUTH_INBOUND_LISTEN, 'inbound.listen'),
  bind(MESHAUTH_INBOUND_APP, 'inbound.app'),
  bind(MESHAUTH_INBOUND_POLICY, 'inbound.policy'),
  bind(MESHAUTH_INBOUND_TLS12, 'inbound.tls12', 'boolean'),
  bind(MESHAUTH_INBOUND_APP_TIMEOUT, 'inbound.appTimeout'),
  bind(MESHAUTH_INBOUND_END_USER, 'inbound.endUser', 'json'),
  bind(MESHAUTH_INBOUND_EXTERNAL, 'inbound.external', 'json'),
  bind(MESHAUTH_INBOUND_LIMITS, 'inbound.limits', 'json'),
  bind(MESHAUTH_INBOUND_TCP, 'inbound.tcp', 'json'),
  bind(MESHAUTH_OUTBOUND_LISTEN, 'outbound.listen'),
  bind(MESHAUTH_OUTBOUND_ROUTES, 'outbound.routes', 'json'),
  bind(MESHAUTH_OUTBOUND_EGRESS, 'outbound.egress', 'list'),
  bind(MESHAUTH_OUTBOUND_TIMEOUT, 'outbound.timeout'),
  bind(MESHAUTH_OUTBOUND_HTTP2, 'outbound.http2', 'boolean'),
  bind(MESHAUTH_OUTBOUND_DNS, 'outbound.dns', 'json'),
  bind(MESHAUTH_OUTBOUND_TCP, 'outbound.tcp', 'json'),
  bind(MESHAUTH_OUTBOUND_LIMITS, 'outbound.limits', 'json'),
  bind(MESHAUTH_ADMIN_LISTEN, 'admin.listen'),
  bind(MESHAUTH_ADMIN_APP_PROBES, 'admin.appProbes', 'json'),
  bind(MESHAUTH_DRAIN_TIMEOUT, 'drainTimeout'),
]);
