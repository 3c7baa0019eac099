// Service retargeting: a Service in front of injected pods gains port 15006 → `meshauth-in`, the port mesh callers
// reach (their sidecar dials `{service}.{namespace}:15006` over mTLS). The Service's own ports stay as they are, so
// clients outside the mesh keep working while the app still listens on them (see docs/injection.md). Pure.
import { arrayAt, ensureArray, ensureObject, isObject, type JsonObject, objectAt } from './inject-json.js';
import { ANNOTATION_STATUS, PORT_INBOUND, PORT_INBOUND_NAME, SERVICE_PORT } from './inject-names.js';
import { optedOut } from './inject-pod.js';

/** Name given to a Service's only port when it has none: Kubernetes requires names once there are two ports. */
const UNNAMED_PORT_NAME = 'app';

interface ServiceStatus {
  readonly version: 1;
  /** The name injection gave to the Service's single unnamed port. */
  readonly namedPort?: string;
  readonly created: string[];
}

export type ServiceOutcome =
  | { readonly kind: 'retargeted'; readonly warnings: readonly string[] }
  | { readonly kind: 'skipped'; readonly warnings: readonly string[] };

/** The selector of a Service that routes to pods (not ExternalName, not selector-less). */
export function serviceSelector(service: JsonObject): Record<string, string> | undefined {
  const spec = objectAt(service, 'spec');
  if (spec === undefined || spec.type === 'ExternalName') return undefined;
  const selector = objectAt(spec, 'selector');
  if (selector === undefined || Object.keys(selector).length === 0) return undefined;
  return Object.fromEntries(Object.entries(selector).map(([k, v]) => [k, String(v)]));
}

/** How a Service's ports would be reachable from outside the cluster, or undefined when they are not. */
function exposedOutside(spec: JsonObject | undefined): string | undefined {
  const type = spec?.type;
  if (type === 'NodePort' || type === 'LoadBalancer') return `type ${type}`;
  if (Array.isArray(spec?.externalIPs) && spec.externalIPs.length > 0) return 'externalIPs';
  return undefined;
}

/** Adds the mesh port to `service` (mutated); idempotent. */
export function retargetService(service: JsonObject, where: string): ServiceOutcome {
  const warnings: string[] = [];
  if (optedOut(objectAt(service, 'metadata')) || serviceSelector(service) === undefined) {
    // A Service that got the port before and is now opted out, selector-less or ExternalName loses it again: on an
    // UPDATE the object still carries what an earlier review added.
    unretargetService(service);
    return { kind: 'skipped', warnings };
  }
  const exposure = exposedOutside(objectAt(service, 'spec'));
  if (exposure !== undefined) {
    // The mesh port would be opened on every node, on the load balancer or on the external IPs: an mTLS listener
    // facing outside the cluster that no mesh caller needs. Mesh callers get a ClusterIP Service of their own. A
    // Service retargeted earlier and now changed this way loses the port again.
    unretargetService(service);
    warnings.push(
      `${where}: ${exposure}; the mesh port is not added (it would be exposed outside the cluster): give mesh callers a ClusterIP Service selecting the same pods`,
    );
    return { kind: 'skipped', warnings };
  }
  unretargetService(service);
  const spec = objectAt(service, 'spec') as JsonObject;
  const status: { version: 1; namedPort?: string; created: string[] } = { version: 1, created: [] };
  const ports = ensureArray(spec, 'ports', () => status.created.push('ports'));
  const clash = ports.find((p) => isObject(p) && (p.port === PORT_INBOUND || p.name === PORT_INBOUND_NAME));
  if (clash !== undefined) {
    // A Service that declares the mesh port itself (as deploy/'s example does) is already what injection would
    // make: nothing to add and nothing to warn about.
    if (!isMeshPort(clash))
      warnings.push(`${where}: already has a port ${PORT_INBOUND} or ${PORT_INBOUND_NAME}; not retargeted`);
    if (status.created.includes('ports')) delete spec.ports;
    return { kind: 'skipped', warnings };
  }
  const only = ports.length === 1 && isObject(ports[0]) ? ports[0] : undefined;
  if (only !== undefined && only.name === undefined) {
    only.name = UNNAMED_PORT_NAME;
    status.namedPort = UNNAMED_PORT_NAME;
  }
  ports.push({ ...SERVICE_PORT });
  const metadata = ensureObject(service, 'metadata', () => status.created.push('metadata'));
  const annotations = ensureObject(metadata, 'annotations', () => status.created.push('annotations'));
  annotations[ANNOTATION_STATUS] = JSON.stringify(status);
  return { kind: 'retargeted', warnings };
}

/** The port exactly as injection adds it (protocol TCP written or left to its default). */
function isMeshPort(port: unknown): boolean {
  return (
    isObject(port) &&
    port.name === SERVICE_PORT.name &&
    port.port === SERVICE_PORT.port &&
    port.targetPort === SERVICE_PORT.targetPort &&
    (port.protocol === undefined || port.protocol === SERVICE_PORT.protocol)
  );
}

/** Removes what retargetService added (mutates); returns false when the Service was not retargeted. */
export function unretargetService(service: JsonObject): boolean {
  const metadata = objectAt(service, 'metadata');
  const annotations = metadata === undefined ? undefined : objectAt(metadata, 'annotations');
  if (metadata === undefined || annotations === undefined || !(ANNOTATION_STATUS in annotations)) return false;
  const status = parseStatus(annotations[ANNOTATION_STATUS]);
  const spec = objectAt(service, 'spec') ?? {};
  const ports = arrayAt(spec, 'ports') ?? [];
  const kept = ports.filter(
    (p) => !(isObject(p) && p.name === PORT_INBOUND_NAME && p.targetPort === PORT_INBOUND_NAME),
  );
  if (kept.length === 0 && status.created.includes('ports')) delete spec.ports;
  else if (kept.length !== ports.length) spec.ports = kept;
  if (status.namedPort !== undefined && kept.length === 1) {
    const only = kept[0];
    if (isObject(only) && only.name === status.namedPort) delete only.name;
  }
  delete annotations[ANNOTATION_STATUS];
  if (status.created.includes('annotations') && Object.keys(annotations).length === 0) delete metadata.annotations;
  if (status.created.includes('metadata') && Object.keys(metadata).length === 0) delete service.metadata;
  return true;
}

function parseStatus(value: unknown): ServiceStatus {
  try {
    const parsed: unknown = typeof value === 'string' ? JSON.parse(value) : undefined;
    if (!isObject(parsed)) return { version: 1, created: [] };
    const created = Array.isArray(parsed.created) ? parsed.created.filter((s) => typeof s === 'string') : [];
    return typeof parsed.namedPort === 'string'
      ? { version: 1, namedPort: parsed.namedPort, created }
      : { version: 1, created };
  } catch {
    return { version: 1, created: [] };
  }
}
