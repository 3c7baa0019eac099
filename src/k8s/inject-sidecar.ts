// The sidecar container and volumes injection adds to a pod, and the sidecar.yaml it carries in
// MESHAUTH_CONFIG_YAML. Pure: settings in, plain Kubernetes objects out.
import { stringify } from 'yaml';
import type { InjectConfig, LogLevel } from './inject-config.js';
import {
  type AppProbeKind,
  END_USER_KEY,
  ENV_CONFIG_YAML,
  ENV_END_USER,
  ENV_NODE_OPTIONS,
  MOUNT_POLICY,
  MOUNT_TOKEN,
  MOUNT_TRUST_BUNDLE,
  POLICY_KEY,
  PORT_ADMIN,
  PORT_ADMIN_NAME,
  PORT_INBOUND,
  PORT_INBOUND_NAME,
  PORT_OUTBOUND,
  SIDECAR_NAME,
  TOKEN_AUDIENCE,
  TOKEN_EXPIRATION_SECONDS,
  TRUST_BUNDLE_CONFIGMAP,
  TRUST_BUNDLE_KEY,
  VOLUME_POLICY,
  VOLUME_TOKEN,
  VOLUME_TRUST_BUNDLE,
} from './inject-names.js';
import { parseQuantity } from './inject-quantity.js';

/** The user the distroless image runs as; numeric, so the kubelet can verify runAsNonRoot. */
export const SIDECAR_UID = 65532;
const DEFAULT_APP_PORT = 8080;
const MIB = 2 ** 20;
/**
 * Node sizes the heap from the container's memory limit, old space half of it, but never below 256 MiB: under a
 * smaller limit the heap may grow past the limit, and the kernel kills the sidecar where V8 would have collected.
 */
const NODE_HEAP_FLOOR_BYTES = 256 * MIB;

export type AppProbes = Record<string, Partial<Record<AppProbeKind, { port: number; path: string }>>>;

export interface SidecarSettings {
  readonly config: InjectConfig;
  /** The app's port on loopback; undefined when the pod declares none (then readiness does not ask the app). */
  readonly appPort: number | undefined;
  readonly policyConfigMap: string | undefined;
  /** ConfigMap with key end-user.json: the pod's own `inbound.endUser`, replacing inject.yaml's `endUser`. */
  readonly endUserConfigMap: string | undefined;
  readonly logLevel: LogLevel;
  readonly cpu: string;
  readonly memory: string;
  readonly appProbes: AppProbes;
}

/** The whole sidecar.yaml: routes for every cluster Service name, identities derived from the name's namespace. */
export function sidecarConfigDocument(settings: SidecarSettings): Record<string, unknown> {
  const { config } = settings;
  const peer = () => ({
    address: `{host}:${PORT_INBOUND}`,
    ids: [`spiffe://${config.trustDomain}/ns/{namespace}/sa/*`],
  });
  // Peers and the kubelet's probes dial the pod IP, which is IPv6 in an IPv6-only cluster and either family in a
  // dual-stack one: `[::]` takes both families (IPv4 alone on a node without IPv6), where 0.0.0.0 left IPv6 unanswered.
  const inbound: Record<string, unknown> = {
    listen: `[::]:${PORT_INBOUND}`,
    app: `127.0.0.1:${settings.appPort ?? DEFAULT_APP_PORT}`,
  };
  if (settings.policyConfigMap !== undefined) inbound.policy = `${MOUNT_POLICY}/${POLICY_KEY}`;
  // A pod's own end-user ConfigMap arrives as MESHAUTH_INBOUND_END_USER (which overrides the document): the
  // mesh-wide issuers are then left out rather than shown and silently replaced.
  if (settings.endUserConfigMap === undefined && config.endUser !== undefined) inbound.endUser = config.endUser;
  if (config.trustForwardedFrom !== undefined) inbound.trustForwardedFrom = [...config.trustForwardedFrom];
  const admin: Record<string, unknown> = { listen: `[::]:${PORT_ADMIN}` };
  if (Object.keys(settings.appProbes).length > 0) admin.appProbes = settings.appProbes;
  return {
    trustDomain: config.trustDomain,
    ca: {
      url: config.caUrl,
      bundle: `${MOUNT_TRUST_BUNDLE}/${TRUST_BUNDLE_KEY}`,
      token: `${MOUNT_TOKEN}/token`,
    },
    inbound,
    outbound: {
      listen: `127.0.0.1:${PORT_OUTBOUND}`,
      // `<service>.<namespace>`, `…svc`, `…svc.<cluster domain>`: the peer is the Service's own port 15006.
      routes: {
        '*.*': peer(),
        '*.*.svc': peer(),
        [`*.*.svc.${config.clusterDomain}`]: peer(),
      },
    },
    admin,
  };
}

export function sidecarContainer(settings: SidecarSettings): Record<string, unknown> {
  const { config } = settings;
  const admin = (path: string) => ({ httpGet: { path, port: PORT_ADMIN_NAME } });
  const mounts: Record<string, unknown>[] = [
    { name: VOLUME_TOKEN, mountPath: MOUNT_TOKEN, readOnly: true },
    { name: VOLUME_TRUST_BUNDLE, mountPath: MOUNT_TRUST_BUNDLE, readOnly: true },
  ];
  if (settings.policyConfigMap !== undefined) {
    mounts.push({ name: VOLUME_POLICY, mountPath: MOUNT_POLICY, readOnly: true });
  }
  const memoryLimit = atLeast(config.proxy.memoryLimit, settings.memory);
  const container: Record<string, unknown> = {
    name: SIDECAR_NAME,
    image: config.image,
    imagePullPolicy: config.imagePullPolicy,
    // A native sidecar (Kubernetes ≥ 1.29): started before the app, stopped after it, ignored by Job completion.
    restartPolicy: 'Always',
    args: ['sidecar', '--log-level', settings.logLevel],
    env: [
      {
        name: ENV_CONFIG_YAML,
        value: stringify(sidecarConfigDocument(settings), { lineWidth: 0, aliasDuplicateObjects: false }),
      },
      // Read when the container starts (not optional: a missing ConfigMap keeps the sidecar from starting rather
      // than running it without the end-user checks its policy expects); a change needs a rollout restart.
      ...(settings.endUserConfigMap === undefined
        ? []
        : [
            {
              name: ENV_END_USER,
              valueFrom: { configMapKeyRef: { name: settings.endUserConfigMap, key: END_USER_KEY } },
            },
          ]),
      ...heapBound(memoryLimit),
    ],
    ports: [
      { name: PORT_INBOUND_NAME, containerPort: PORT_INBOUND, protocol: 'TCP' },
      { name: PORT_ADMIN_NAME, containerPort: PORT_ADMIN, protocol: 'TCP' },
    ],
    resources: {
      requests: { cpu: settings.cpu, memory: settings.memory },
      limits: {
        cpu: atLeast(config.proxy.cpuLimit, settings.cpu),
        memory: memoryLimit,
      },
    },
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      runAsUser: SIDECAR_UID,
      runAsGroup: SIDECAR_UID,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    // The app starts only once this passes, so it asks for the SVID alone, never for the app.
    startupProbe: { ...admin('/startupz'), periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 120 },
    livenessProbe: { ...admin('/livez'), periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 },
    // Without a declared app port there is nothing to reach (a worker, a Job): readiness would never pass.
    ...(settings.appPort === undefined
      ? {}
      : { readinessProbe: { ...admin('/readyz'), periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 3 } }),
    volumeMounts: mounts,
  };
  return container;
}

export function sidecarVolumes(settings: SidecarSettings): Record<string, unknown>[] {
  const volumes: Record<string, unknown>[] = [
    {
      name: VOLUME_TOKEN,
      projected: {
        sources: [
          {
            serviceAccountToken: {
              audience: TOKEN_AUDIENCE,
              expirationSeconds: TOKEN_EXPIRATION_SECONDS,
              path: 'token',
            },
          },
        ],
      },
    },
    {
      name: VOLUME_TRUST_BUNDLE,
      configMap: { name: TRUST_BUNDLE_CONFIGMAP, items: [{ key: TRUST_BUNDLE_KEY, path: TRUST_BUNDLE_KEY }] },
    },
  ];
  if (settings.policyConfigMap !== undefined) {
    // The whole ConfigMap as a directory (not subPath), so the kubelet's updates reach the policy watcher.
    volumes.push({ name: VOLUME_POLICY, configMap: { name: settings.policyConfigMap } });
  }
  return volumes;
}

/**
 * NODE_OPTIONS bounding the old space at half a memory limit under 256 MiB (Node's own ratio, without its floor).
 * Nothing at or above it: Node's own bound is what the sidecar was measured with in a 256 MiB pod (docs/performance.md
 * Round 10). The image's entrypoint sets only the young generation's size (`--max-semi-space-size`), no old-space
 * bound, so this one is the only one.
 */
function heapBound(memoryLimit: string): Record<string, unknown>[] {
  const bytes = parseQuantity(memoryLimit);
  if (bytes === undefined || bytes >= NODE_HEAP_FLOOR_BYTES) return [];
  const mib = Math.max(1, Math.floor(bytes / 2 / MIB));
  return [{ name: ENV_NODE_OPTIONS, value: `--max-old-space-size=${mib}` }];
}

/** The limit, raised to the request when a per-workload request exceeds it (Kubernetes refuses request > limit). */
function atLeast(limit: string, request: string): string {
  const l = parseQuantity(limit);
  const r = parseQuantity(request);
  return l !== undefined && r !== undefined && r > l ? request : limit;
}
