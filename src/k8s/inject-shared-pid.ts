// What a pod whose containers share one PID namespace (`shareProcessNamespace: true`, or `hostPID: true`, the
// node's) exposes: every container sees the sidecar's process, and one running as the sidecar's uid, or able to
// become it or to ptrace, can read its memory through /proc — the SVID's private key and the service-account token —
// and so speak as the workload anywhere in the mesh. Linux lets the same user do that, and a Node process cannot mark
// itself non-dumpable, so the sidecar cannot refuse it: the injector says so, per container. Pure.
import { arrayAt, type JsonObject, named, objectAt } from './inject-json.js';
import { SIDECAR_NAME } from './inject-names.js';
import { SIDECAR_UID } from './inject-sidecar.js';

/** The warnings for `spec` (a pod spec): one per app container that could read the sidecar's memory; [] if none. */
export function sharedPidNamespaceWarnings(spec: JsonObject, where: string): string[] {
  const hostPid = spec.hostPID === true;
  if (spec.shareProcessNamespace !== true && !hostPid) return [];
  // Every pod's processes are in the node's PID namespace; hostPID puts this pod's sidecar where the containers of
  // other hostPID pods see it too.
  const warnings = hostPid
    ? [
        `${where}: hostPID: containers of other hostPID pods running as uid ${SIDECAR_UID} or root can read the sidecar's memory (SVID key, token)`,
      ]
    : [];
  const podUid = objectAt(spec, 'securityContext')?.runAsUser;
  const containers = [
    ...named(arrayAt(spec, 'initContainers')).filter((c) => c.name !== SIDECAR_NAME),
    ...named(arrayAt(spec, 'containers')),
  ];
  for (const container of containers) {
    const why = readsSidecarMemory(container, podUid);
    if (why !== undefined) {
      warnings.push(
        `${where}: container ${String(container.name)} ${why}: it can read the sidecar's memory (SVID key, token) in the shared PID namespace`,
      );
    }
  }
  return warnings;
}

function readsSidecarMemory(container: JsonObject, podUid: unknown): string | undefined {
  const context = objectAt(container, 'securityContext');
  if (context?.privileged === true) return 'is privileged';
  const capabilities = objectAt(context ?? {}, 'capabilities') ?? {};
  const added = capabilityNames(arrayAt(capabilities, 'add'));
  if (added.has('ALL')) return 'adds ALL capabilities';
  if (added.has('SYS_PTRACE')) return 'adds SYS_PTRACE';
  if (added.has('SETUID')) return `adds SETUID (may switch to uid ${SIDECAR_UID})`;
  const uid = context?.runAsUser ?? podUid;
  if (uid === SIDECAR_UID) return `runs as uid ${SIDECAR_UID}, the sidecar's`;
  if (uid === 0) {
    // Root keeps CAP_SETUID among a container's default capabilities unless it drops it.
    const dropped = capabilityNames(arrayAt(capabilities, 'drop'));
    return dropped.has('ALL') || dropped.has('SETUID') ? undefined : `runs as root (may switch to uid ${SIDECAR_UID})`;
  }
  // Without a runAsUser the image's user decides: distroless images run as 65532 too, others as root.
  if (uid === undefined) return `sets no runAsUser (its image may run as uid ${SIDECAR_UID} or root)`;
  return undefined;
}

/** Capability names as Kubernetes takes them (`SYS_PTRACE`, `CAP_SYS_PTRACE`, any case), upper-case without `CAP_`. */
function capabilityNames(list: readonly unknown[] | undefined): Set<string> {
  return new Set(
    (list ?? []).filter((c): c is string => typeof c === 'string').map((c) => c.toUpperCase().replace(/^CAP_/, '')),
  );
}
