// What a pod that shares one PID namespace among its containers (`shareProcessNamespace: true`) exposes: every
// container sees the sidecar's process, and one running as the sidecar's uid (or allowed to ptrace) can read its
// memory through /proc — the SVID's private key and the service-account token — and so speak as the workload
// anywhere in the mesh. Linux lets the same user do that, and a Node process cannot mark itself non-dumpable, so the
// sidecar cannot refuse it: the injector says so, per container. Pure.
import { arrayAt, type JsonObject, named, objectAt } from './inject-json.js';
import { SIDECAR_NAME } from './inject-names.js';
import { SIDECAR_UID } from './inject-sidecar.js';

/** The warnings for `spec` (a pod spec), one per app container that could read the sidecar's memory; [] if none. */
export function sharedPidNamespaceWarnings(spec: JsonObject, where: string): string[] {
  if (spec.shareProcessNamespace !== true) return [];
  const podUid = objectAt(spec, 'securityContext')?.runAsUser;
  const containers = [
    ...named(arrayAt(spec, 'initContainers')).filter((c) => c.name !== SIDECAR_NAME),
    ...named(arrayAt(spec, 'containers')),
  ];
  const warnings: string[] = [];
  for (const container of containers) {
    const why = readsSidecarMemory(container, podUid);
    if (why !== undefined) {
      warnings.push(
        `${where}: shareProcessNamespace: container ${String(container.name)} ${why}, so it can read the sidecar's memory (SVID key, token)`,
      );
    }
  }
  return warnings;
}

function readsSidecarMemory(container: JsonObject, podUid: unknown): string | undefined {
  const context = objectAt(container, 'securityContext');
  if (context?.privileged === true) return 'is privileged';
  const added = arrayAt(objectAt(context ?? {}, 'capabilities') ?? {}, 'add') ?? [];
  if (added.some((cap) => typeof cap === 'string' && /^(CAP_)?(SYS_PTRACE|ALL)$/i.test(cap))) {
    return 'adds SYS_PTRACE';
  }
  const uid = context?.runAsUser ?? podUid;
  if (uid === SIDECAR_UID) return `runs as uid ${SIDECAR_UID}, the sidecar's`;
  // Without a runAsUser the image's user decides, and distroless images run as 65532 too.
  if (uid === undefined) return `sets no runAsUser (its image may run as uid ${SIDECAR_UID}, the sidecar's)`;
  return undefined;
}
