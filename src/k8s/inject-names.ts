// The names injection writes into Kubernetes objects: annotations, container, volume and port names, mount paths.
// One table, because inject, uninject, the webhook, the docs and the tests must agree on every one of them.

/** `"false"` on an object or its pod template leaves it alone. */
export const ANNOTATION_INJECT = 'meshauth.dev/inject';
/** What injection added (so uninject removes exactly that): JSON, see InjectStatus. */
export const ANNOTATION_STATUS = 'meshauth.dev/status';
/** The app containers' httpGet probes before they were pointed at the sidecar: JSON container → kind → httpGet. */
export const ANNOTATION_ORIGINAL_PROBES = 'meshauth.dev/original-probes';

/** Per-workload settings, read from the pod template's annotations. */
export const ANNOTATION_APP_PORT = 'config.meshauth.dev/app-port';
export const ANNOTATION_POLICY = 'config.meshauth.dev/policy';
export const ANNOTATION_PROXY_CPU = 'config.meshauth.dev/proxy-cpu';
export const ANNOTATION_PROXY_MEMORY = 'config.meshauth.dev/proxy-memory';
export const ANNOTATION_LOG_LEVEL = 'config.meshauth.dev/log-level';
/** A ConfigMap whose key `end-user.json` holds the pod's `inbound.endUser` (JSON), passed as an env variable. */
export const ANNOTATION_END_USER = 'config.meshauth.dev/end-user';
/** Every per-workload setting shares this prefix: any other key under it is a typo that would change nothing. */
export const CONFIG_ANNOTATION_PREFIX = 'config.meshauth.dev/';
export const CONFIG_ANNOTATIONS: readonly string[] = Object.freeze([
  ANNOTATION_APP_PORT,
  ANNOTATION_POLICY,
  ANNOTATION_END_USER,
  ANNOTATION_PROXY_CPU,
  ANNOTATION_PROXY_MEMORY,
  ANNOTATION_LOG_LEVEL,
]);

export const PROMETHEUS_ANNOTATIONS: Readonly<Record<string, string>> = Object.freeze({
  'prometheus.io/scrape': 'true',
  'prometheus.io/port': '15020',
  'prometheus.io/path': '/metrics',
});

export const SIDECAR_NAME = 'meshauth-proxy';
export const PORT_INBOUND_NAME = 'meshauth-in';
export const PORT_ADMIN_NAME = 'meshauth-admin';
export const PORT_INBOUND = 15006;
export const PORT_OUTBOUND = 15001;
export const PORT_ADMIN = 15020;
/** Ports the sidecar binds in the pod's network namespace; an app container using one of them conflicts. */
export const SIDECAR_PORTS: readonly number[] = Object.freeze([PORT_OUTBOUND, PORT_INBOUND, PORT_ADMIN]);

export const VOLUME_TOKEN = 'meshauth-token';
export const VOLUME_TRUST_BUNDLE = 'meshauth-trust-bundle';
export const VOLUME_POLICY = 'meshauth-policy';
export const INJECTED_VOLUMES: readonly string[] = Object.freeze([VOLUME_TOKEN, VOLUME_TRUST_BUNDLE, VOLUME_POLICY]);

export const TRUST_BUNDLE_CONFIGMAP = 'meshauth-trust-bundle';
export const TRUST_BUNDLE_KEY = 'bundle.pem';
export const TOKEN_AUDIENCE = 'meshauth';
export const TOKEN_EXPIRATION_SECONDS = 3600;
export const POLICY_KEY = 'policy.yaml';
export const END_USER_KEY = 'end-user.json';

export const MOUNT_TOKEN = '/var/run/secrets/meshauth/token';
export const MOUNT_TRUST_BUNDLE = '/var/run/secrets/meshauth/trust';
export const MOUNT_POLICY = '/etc/meshauth/policy';

/** The variable that carries the whole sidecar.yaml into the sidecar container. */
export const ENV_CONFIG_YAML = 'MESHAUTH_CONFIG_YAML';
/** The sidecar variable for `inbound.endUser` (JSON); it overrides the inline document's value. */
export const ENV_END_USER = 'MESHAUTH_INBOUND_END_USER';
/** Node's own: the sidecar's heap bound, set when its memory limit is below what Node would choose (inject-sidecar). */
export const ENV_NODE_OPTIONS = 'NODE_OPTIONS';
/** Variables set on app containers (only where the container does not set them itself). */
export const APP_ENV_NAMES: readonly string[] = Object.freeze([
  'HTTP_PROXY',
  'http_proxy',
  'NO_PROXY',
  'no_proxy',
  'NODE_USE_ENV_PROXY',
]);

/** The probe kinds of a container and the admin path segment each is forwarded as. */
export const PROBE_KINDS = Object.freeze({
  livenessProbe: 'livez',
  readinessProbe: 'readyz',
  startupProbe: 'startupz',
} as const);
export type ProbeField = keyof typeof PROBE_KINDS;
export type AppProbeKind = (typeof PROBE_KINDS)[ProbeField];

/** The Service port that mesh callers reach (their sidecar dials `{host}:15006`). */
export const SERVICE_PORT = Object.freeze({
  name: PORT_INBOUND_NAME,
  port: PORT_INBOUND,
  targetPort: PORT_INBOUND_NAME,
  protocol: 'TCP',
});
