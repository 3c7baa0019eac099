// Checks on pod specs that no OpenAPI schema states: the API server's own rules for containers, probes, volumes
// and native sidecars; Pod Security "restricted"; meshauth's hardening bar; and what an injected meshauth sidecar
// must look like. Each returns problems as `path: what is wrong` strings (empty = fine).
type Json = Record<string, unknown>;

export interface PodSpecAt {
  readonly spec: Json;
  /** Dotted path of the pod spec inside the object, e.g. `spec.template.spec`. */
  readonly path: string;
  /** Labels of the pod template (or the Pod). */
  readonly labels: Json;
}

export const MESHAUTH_ADMIN_PORT = 15020;
export const MIN_TOKEN_EXPIRATION_SECONDS = 600;

export function record(value: unknown): Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Json) : {};
}

export function list(value: unknown): Json[] {
  return Array.isArray(value) ? value.map(record) : [];
}

/** The pod spec of a Pod, a workload's pod template, or a CronJob's job template; undefined for other kinds. */
export function podSpecOf(obj: unknown): PodSpecAt | undefined {
  const o = record(obj);
  const kind = o.kind;
  if (kind === 'Pod') return { spec: record(o.spec), path: 'spec', labels: record(record(o.metadata).labels) };
  if (['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'ReplicationController'].includes(String(kind))) {
    const template = record(record(o.spec).template);
    return {
      spec: record(template.spec),
      path: 'spec.template.spec',
      labels: record(record(template.metadata).labels),
    };
  }
  if (kind === 'CronJob') {
    const template = record(record(record(record(o.spec).jobTemplate).spec).template);
    return {
      spec: record(template.spec),
      path: 'spec.jobTemplate.spec.template.spec',
      labels: record(record(template.metadata).labels),
    };
  }
  return undefined;
}

interface ContainerAt {
  readonly container: Json;
  readonly path: string;
  readonly init: boolean;
}

function containersOf(pod: PodSpecAt): ContainerAt[] {
  const at = (field: string, init: boolean): ContainerAt[] =>
    list(pod.spec[field]).map((container, i) => ({ container, path: `${pod.path}.${field}[${i}]`, init }));
  return [...at('initContainers', true), ...at('containers', false), ...at('ephemeralContainers', false)];
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
// IANA_SVC_NAME: at most 15 characters, lower-case letters, digits and single hyphens, at least one letter.
function isPortName(name: string): boolean {
  return (
    name.length <= 15 && /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name) && !name.includes('--') && /[a-z]/.test(name)
  );
}

const PROBES = ['livenessProbe', 'readinessProbe', 'startupProbe'] as const;

/**
 * The API server's validation of a pod spec beyond the schema (k8s.io/kubernetes pkg/apis/core/validation):
 * container and port names, restartPolicy only on init containers and only "Always" (native sidecars, 1.29+),
 * probes and lifecycle only where allowed, named probe ports that the same container declares (the kubelet looks a
 * named port up in the probed container only), volume references, token projections of at least 10 minutes.
 */
export function checkPodSpecRules(pod: PodSpecAt): string[] {
  const problems: string[] = [];
  const volumes = new Set<string>();
  list(pod.spec.volumes).forEach((volume, i) => {
    const name = String(volume.name ?? '');
    const at = `${pod.path}.volumes[${i}]`;
    if (!DNS_LABEL.test(name)) problems.push(`${at}.name: "${name}" is not a DNS-1123 label`);
    if (volumes.has(name)) problems.push(`${at}.name: duplicate volume "${name}"`);
    volumes.add(name);
    list(record(volume.projected).sources).forEach((source, j) => {
      const token = source.serviceAccountToken;
      if (token === undefined) return;
      const seconds = record(token).expirationSeconds;
      if (typeof seconds === 'number' && seconds < MIN_TOKEN_EXPIRATION_SECONDS) {
        problems.push(
          `${at}.projected.sources[${j}].serviceAccountToken.expirationSeconds: ${seconds} is below the API minimum of ${MIN_TOKEN_EXPIRATION_SECONDS}`,
        );
      }
    });
  });
  const names = new Set<string>();
  const portNames = new Set<string>();
  for (const { container, path, init } of containersOf(pod)) {
    const name = String(container.name ?? '');
    if (!DNS_LABEL.test(name)) problems.push(`${path}.name: "${name}" is not a DNS-1123 label`);
    if (names.has(name)) problems.push(`${path}.name: duplicate container name "${name}"`);
    names.add(name);
    const restartPolicy = container.restartPolicy;
    const sidecar = init && restartPolicy === 'Always';
    if (restartPolicy !== undefined && !init) {
      problems.push(`${path}.restartPolicy: only init containers may set restartPolicy (native sidecars)`);
    } else if (restartPolicy !== undefined && restartPolicy !== 'Always') {
      problems.push(`${path}.restartPolicy: "${String(restartPolicy)}" — the only allowed value is "Always"`);
    }
    const ownPorts = new Set<string>();
    list(container.ports).forEach((port, i) => {
      if (port.name === undefined) return;
      const portName = String(port.name);
      if (!isPortName(portName)) problems.push(`${path}.ports[${i}].name: "${portName}" is not an IANA_SVC_NAME`);
      // The API server refuses a duplicate within a container and warns across containers (Services and probes
      // that name the port then pick the first): both are mistakes in what meshauth emits.
      if (portNames.has(portName)) problems.push(`${path}.ports[${i}].name: port name "${portName}" used twice`);
      portNames.add(portName);
      ownPorts.add(portName);
    });
    for (const probe of PROBES) {
      const spec = container[probe];
      if (spec === undefined) continue;
      if (init && !sidecar) {
        problems.push(`${path}.${probe}: a plain init container may not have probes (only restartPolicy: Always)`);
      }
      problems.push(...checkProbe(record(spec), `${path}.${probe}`, ownPorts, probe !== 'readinessProbe'));
    }
    if (init && !sidecar && container.lifecycle !== undefined) {
      problems.push(`${path}.lifecycle: a plain init container may not have lifecycle hooks`);
    }
    const mounts = new Set<string>();
    list(container.volumeMounts).forEach((mount, i) => {
      const volume = String(mount.name ?? '');
      if (!volumes.has(volume)) problems.push(`${path}.volumeMounts[${i}].name: no volume "${volume}" in the pod`);
      const mountPath = String(mount.mountPath ?? '');
      if (mounts.has(mountPath)) problems.push(`${path}.volumeMounts[${i}].mountPath: "${mountPath}" mounted twice`);
      mounts.add(mountPath);
    });
  }
  return problems;
}

function checkProbe(probe: Json, at: string, ownPorts: ReadonlySet<string>, singleSuccess: boolean): string[] {
  const problems: string[] = [];
  const handlers = ['exec', 'httpGet', 'tcpSocket', 'grpc'].filter((h) => probe[h] !== undefined);
  if (handlers.length !== 1) problems.push(`${at}: needs exactly one handler, has ${handlers.length}`);
  for (const handler of ['httpGet', 'tcpSocket'] as const) {
    const port = record(probe[handler]).port;
    if (typeof port === 'string' && !ownPorts.has(port)) {
      problems.push(`${at}.${handler}.port: "${port}" is not a port name of this container`);
    }
    if (typeof port === 'number' && (port < 1 || port > 65535)) problems.push(`${at}.${handler}.port: ${port}`);
  }
  if (singleSuccess && probe.successThreshold !== undefined && probe.successThreshold !== 1) {
    problems.push(`${at}.successThreshold: must be 1 for liveness and startup probes`);
  }
  return problems;
}

// Pod Security Standards, "restricted" profile (latest, Kubernetes 1.29+), which includes "baseline".
const RESTRICTED_VOLUME_TYPES = new Set([
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'persistentVolumeClaim',
  'projected',
  'secret',
]);

/** Every rule of Pod Security "restricted" that a pod spec can break. */
export function checkRestrictedPodSecurity(pod: PodSpecAt): string[] {
  const problems: string[] = [];
  const spec = pod.spec;
  for (const host of ['hostNetwork', 'hostPID', 'hostIPC'] as const) {
    if (spec[host] === true) problems.push(`${pod.path}.${host}: not allowed`);
  }
  list(spec.volumes).forEach((volume, i) => {
    const type = Object.keys(volume).find((key) => key !== 'name');
    if (type !== undefined && !RESTRICTED_VOLUME_TYPES.has(type)) {
      problems.push(`${pod.path}.volumes[${i}]: volume type "${type}" is not allowed`);
    }
  });
  const podContext = record(spec.securityContext);
  const podSeccomp = record(podContext.seccompProfile).type;
  if (podSeccomp !== undefined && podSeccomp !== 'RuntimeDefault' && podSeccomp !== 'Localhost') {
    problems.push(`${pod.path}.securityContext.seccompProfile.type: "${String(podSeccomp)}" is not allowed`);
  }
  if (podContext.runAsNonRoot === false) problems.push(`${pod.path}.securityContext.runAsNonRoot: must not be false`);
  if (podContext.runAsUser === 0) problems.push(`${pod.path}.securityContext.runAsUser: must not be 0`);
  for (const sysctl of list(podContext.sysctls)) {
    problems.push(`${pod.path}.securityContext.sysctls: "${String(sysctl.name)}" (keep pods free of sysctls)`);
  }
  for (const { container, path } of containersOf(pod)) {
    const context = record(container.securityContext);
    const at = `${path}.securityContext`;
    if (context.privileged === true) problems.push(`${at}.privileged: not allowed`);
    if (context.allowPrivilegeEscalation !== false) problems.push(`${at}.allowPrivilegeEscalation: must be false`);
    const nonRoot = context.runAsNonRoot ?? podContext.runAsNonRoot;
    if (nonRoot !== true) problems.push(`${at}.runAsNonRoot: must be true (here or on the pod)`);
    if (context.runAsUser === 0) problems.push(`${at}.runAsUser: must not be 0`);
    const seccomp = record(context.seccompProfile).type ?? podSeccomp;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') {
      problems.push(`${at}.seccompProfile.type: must be RuntimeDefault or Localhost (here or on the pod)`);
    }
    const capabilities = record(context.capabilities);
    const drop = Array.isArray(capabilities.drop) ? capabilities.drop : [];
    if (!drop.includes('ALL')) problems.push(`${at}.capabilities.drop: must include ALL`);
    const add = Array.isArray(capabilities.add) ? capabilities.add : [];
    for (const capability of add) {
      if (capability !== 'NET_BIND_SERVICE') problems.push(`${at}.capabilities.add: "${String(capability)}"`);
    }
    if (context.procMount !== undefined && context.procMount !== 'Default') {
      problems.push(`${at}.procMount: must be Default`);
    }
    for (const port of list(container.ports)) {
      if (port.hostPort !== undefined && port.hostPort !== 0) problems.push(`${path}.ports: hostPort not allowed`);
    }
  }
  return problems;
}

/**
 * meshauth's own bar for what it ships: a read-only root filesystem and CPU/memory requests plus a memory limit
 * on every container (a sidecar without limits competes with its app; one without requests is evicted first).
 */
export function checkHardening(pod: PodSpecAt): string[] {
  const problems: string[] = [];
  for (const { container, path } of containersOf(pod)) {
    if (record(container.securityContext).readOnlyRootFilesystem !== true) {
      problems.push(`${path}.securityContext.readOnlyRootFilesystem: must be true`);
    }
    const resources = record(container.resources);
    const requests = record(resources.requests);
    const limits = record(resources.limits);
    if (requests.cpu === undefined) problems.push(`${path}.resources.requests.cpu: missing`);
    if (requests.memory === undefined) problems.push(`${path}.resources.requests.memory: missing`);
    if (limits.memory === undefined) problems.push(`${path}.resources.limits.memory: missing`);
  }
  return problems;
}

/**
 * True for the meshauth sidecar: it declares the inbound port `meshauth-in`, or runs `meshauth sidecar`. (The CA
 * declares `meshauth-admin` too, so that port alone does not make a sidecar.)
 */
export function isMeshauthSidecar(container: Json): boolean {
  const ports = list(container.ports).map((port) => port.name);
  const args = Array.isArray(container.args) ? container.args : [];
  return ports.includes('meshauth-in') || (String(container.image ?? '').includes('meshauth') && args[0] === 'sidecar');
}

/**
 * What an injected meshauth sidecar must be: the first init container with restartPolicy: Always (so the app
 * starts after it and Jobs still complete), a startup probe on /startupz (an SVID only: the app starts after this
 * probe passes, so a probe that needed the app would never pass), a liveness probe that does not need the app
 * either, and a projected token for audience `meshauth` of at least 10 minutes, mounted into the sidecar.
 */
export function checkMeshauthSidecar(pod: PodSpecAt): string[] {
  const problems: string[] = [];
  const all = containersOf(pod);
  const sidecars = all.filter(({ container }) => isMeshauthSidecar(container));
  if (sidecars.length === 0) return problems;
  if (sidecars.length > 1) problems.push(`${pod.path}: ${sidecars.length} meshauth sidecars, expected one`);
  for (const { container, path, init } of sidecars) {
    if (!init || container.restartPolicy !== 'Always') {
      problems.push(`${path}: the meshauth sidecar must be an init container with restartPolicy: Always`);
    } else if (path !== `${pod.path}.initContainers[0]`) {
      problems.push(`${path}: the meshauth sidecar must be the first init container (others may need the mesh)`);
    }
    const startup = record(container.startupProbe);
    const startupGet = record(startup.httpGet);
    if (startupGet.path !== '/startupz') {
      problems.push(`${path}.startupProbe.httpGet.path: must be /startupz (the app starts only after this passes)`);
    }
    const adminPort = (port: unknown): boolean => port === MESHAUTH_ADMIN_PORT || port === 'meshauth-admin';
    if (!adminPort(startupGet.port)) problems.push(`${path}.startupProbe.httpGet.port: must be the admin port`);
    const livePath = record(record(container.livenessProbe).httpGet).path;
    if (livePath !== undefined && livePath !== '/livez' && livePath !== '/healthz') {
      problems.push(`${path}.livenessProbe.httpGet.path: "${String(livePath)}" (liveness must not depend on the app)`);
    }
    const tokenVolumes = list(pod.spec.volumes).filter((volume) =>
      list(record(volume.projected).sources).some(
        (source) =>
          source.serviceAccountToken !== undefined && record(source.serviceAccountToken).audience === 'meshauth',
      ),
    );
    if (tokenVolumes.length === 0) {
      problems.push(`${pod.path}.volumes: no projected serviceAccountToken with audience "meshauth"`);
    }
    const mounted = new Set(list(container.volumeMounts).map((mount) => mount.name));
    if (tokenVolumes.length > 0 && !tokenVolumes.some((volume) => mounted.has(volume.name))) {
      problems.push(`${path}.volumeMounts: the meshauth token volume is not mounted into the sidecar`);
    }
    for (const volume of tokenVolumes) {
      for (const source of list(record(volume.projected).sources)) {
        const seconds = record(source.serviceAccountToken).expirationSeconds;
        if (source.serviceAccountToken !== undefined && typeof seconds !== 'number') {
          problems.push(`${pod.path}.volumes[${String(volume.name)}]: set expirationSeconds explicitly (≥ 600)`);
        }
      }
    }
  }
  return problems;
}
