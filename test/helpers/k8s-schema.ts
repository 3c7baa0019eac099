// Offline validation of Kubernetes objects, for tests of everything meshauth renders or emits (deploy/ via
// kustomize, `meshauth inject`, the admission webhook). Three layers, all returning `where: what` problem strings:
//  1. the Kubernetes OpenAPI schema, through kubernetes-models' model class for the object's apiVersion/kind;
//  2. unknown keys at any depth (the schema does not close objects; the API server would drop such a key silently);
//  3. API-server rules that no schema states (native sidecars, probes, names, selectors, webhooks, token lifetime)
//     and, when a meshauth sidecar is present, what injection must produce (k8s-pod-checks.ts).
// Pod Security "restricted" and meshauth's hardening bar are opt-in through validateAll's options, since injection
// must not fail an app container's own (user-chosen) security context.
import { createRequire } from 'node:module';
import {
  checkHardening,
  checkMeshauthSidecar,
  checkPodSpecRules,
  checkRestrictedPodSecurity,
  list,
  type PodSpecAt,
  podSpecOf,
  record,
} from './k8s-pod-checks.js';
import { declarationFileFor, modelModuleFor, unknownKeys } from './k8s-type-shapes.js';
import { validateMonitoringObject } from './monitoring-schema.js';

export { checkHardening, checkMeshauthSidecar, checkRestrictedPodSecurity, podSpecOf } from './k8s-pod-checks.js';

const require = createRequire(import.meta.url);

interface ValidationIssue {
  readonly instancePath?: string;
  readonly message?: string;
  readonly params?: Record<string, unknown>;
}

interface ModelClass {
  new (data: unknown): { validate(): void };
}

export interface ValidateOptions {
  /** Every pod spec must pass Pod Security "restricted" (all containers, injected or not). */
  readonly restricted?: boolean;
  /** Every container: read-only root filesystem, CPU/memory requests and a memory limit. */
  readonly hardened?: boolean;
}

/** Problems of one object (empty = valid). */
export function validateKubernetesObject(obj: unknown, options: ValidateOptions = {}): string[] {
  const o = record(obj);
  const apiVersion = o.apiVersion;
  const kind = o.kind;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') return ['.: apiVersion and kind are required'];
  if (apiVersion === 'monitoring.coreos.com/v1') {
    return validateMonitoringObject(o) ?? [`.: no schema for ${apiVersion} ${kind}`];
  }
  const file = declarationFileFor(apiVersion, kind);
  if (file === undefined) return [`.: no Kubernetes schema for ${apiVersion} ${kind} (unknown apiVersion or kind)`];
  const problems = [...schemaProblems(apiVersion, kind, o), ...unknownKeys(o, { kind: 'object', file }, '')];
  problems.push(...objectRules(o));
  const pod = withClaimVolumes(o, podSpecOf(o));
  if (pod) {
    problems.push(...checkPodSpecRules(pod), ...checkMeshauthSidecar(pod));
    if (options.restricted) problems.push(...checkRestrictedPodSecurity(pod));
    if (options.hardened) problems.push(...checkHardening(pod));
  }
  return problems;
}

/**
 * The pod spec as the pods will have it: a StatefulSet's controller adds one persistentVolumeClaim volume per
 * volumeClaimTemplate (named after the template, replacing a pod volume of the same name), which the containers'
 * volumeMounts may name.
 */
function withClaimVolumes(o: Record<string, unknown>, pod: PodSpecAt | undefined): PodSpecAt | undefined {
  if (pod === undefined || o.kind !== 'StatefulSet') return pod;
  const claims = list(record(o.spec).volumeClaimTemplates)
    .map((template) => record(template.metadata).name)
    .filter((name): name is string => typeof name === 'string');
  if (claims.length === 0) return pod;
  const volumes = list(pod.spec.volumes).filter((volume) => !claims.includes(String(volume.name)));
  const claimVolumes = claims.map((name) => ({ name, persistentVolumeClaim: { claimName: name } }));
  return { ...pod, spec: { ...pod.spec, volumes: [...volumes, ...claimVolumes] } };
}

/** Problems of every document, each prefixed with `[index] Kind namespace/name`. Null documents are skipped. */
export function validateAll(docs: readonly unknown[], options: ValidateOptions = {}): string[] {
  return docs.flatMap((doc, index) => {
    if (doc === null || doc === undefined) return [];
    const o = record(doc);
    const meta = record(o.metadata);
    const where = `[${index}] ${String(o.kind)} ${meta.namespace ? `${String(meta.namespace)}/` : ''}${String(meta.name)}`;
    return validateKubernetesObject(doc, options).map((problem) => `${where}: ${problem}`);
  });
}

function schemaProblems(apiVersion: string, kind: string, obj: Record<string, unknown>): string[] {
  const module = require(modelModuleFor(apiVersion, kind)) as Record<string, ModelClass | undefined>;
  const Model = module[kind];
  if (Model === undefined) return [`.: kubernetes-models has no class ${kind} for ${apiVersion}`];
  try {
    new Model(obj).validate();
    return [];
  } catch (error) {
    const issues = (error as { errors?: ValidationIssue[] }).errors;
    if (!Array.isArray(issues)) return [`.: ${(error as Error).message}`];
    return issues.map((issue) => {
      const path =
        (issue.instancePath ?? '')
          .split('/')
          .filter(Boolean)
          .map((segment, i) => (/^\d+$/.test(segment) ? `[${segment}]` : i === 0 ? segment : `.${segment}`))
          .join('') || '.';
      const allowed = issue.params?.allowedValues;
      return `${path}: ${issue.message ?? 'invalid'}${Array.isArray(allowed) ? ` (${allowed.join(', ')})` : ''}`;
    });
  }
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_1035_LABEL = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const WORKLOADS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet']);

const RBAC_KINDS = new Set(['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding']);

function validName(kind: string, name: string): boolean {
  // RBAC names are path segments (`system:auth-delegator` is fine); Services are DNS-1035 labels; Namespaces are
  // DNS-1123 labels; everything else a DNS-1123 subdomain.
  if (RBAC_KINDS.has(kind)) return name !== '' && name !== '.' && name !== '..' && !/[/%]/.test(name);
  if (kind === 'Service') return DNS_1035_LABEL.test(name);
  if (kind === 'Namespace') return DNS_LABEL.test(name);
  return DNS_SUBDOMAIN.test(name) && name.length <= 253;
}

/** Rules the API server applies to whole objects that the schema cannot express. */
function objectRules(o: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const kind = String(o.kind);
  const meta = record(o.metadata);
  const name = meta.name;
  if (typeof name !== 'string' && meta.generateName === undefined) problems.push('metadata.name: required');
  if (typeof name === 'string' && !validName(kind, name)) {
    problems.push(`metadata.name: "${name}" is not a valid ${kind} name`);
  }
  const spec = record(o.spec);
  if (WORKLOADS.has(kind)) {
    const selector = record(record(spec.selector).matchLabels);
    const labels = record(record(record(spec.template).metadata).labels);
    for (const [key, value] of Object.entries(selector)) {
      if (labels[key] !== value) problems.push(`spec.selector.matchLabels.${key}: not a label of the pod template`);
    }
    if (Object.keys(selector).length === 0 && record(spec.selector).matchExpressions === undefined) {
      problems.push('spec.selector: empty (would select every pod)');
    }
  }
  if (kind === 'Service') {
    const ports = list(spec.ports);
    ports.forEach((port, i) => {
      if (ports.length > 1 && port.name === undefined) problems.push(`spec.ports[${i}].name: required with 2+ ports`);
      const target = port.targetPort;
      if (typeof target === 'string' && !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(target)) {
        problems.push(`spec.ports[${i}].targetPort: "${target}" is not a port name`);
      }
    });
  }
  if (kind === 'PodDisruptionBudget' && (spec.minAvailable === undefined) === (spec.maxUnavailable === undefined)) {
    problems.push('spec: set exactly one of minAvailable and maxUnavailable');
  }
  if (kind === 'MutatingWebhookConfiguration' || kind === 'ValidatingWebhookConfiguration') {
    problems.push(...webhookRules(list(o.webhooks)));
  }
  if (kind === 'ClusterRoleBinding' || kind === 'RoleBinding') {
    list(o.subjects).forEach((subject, i) => {
      if (subject.kind === 'ServiceAccount' && subject.namespace === undefined && kind === 'ClusterRoleBinding') {
        problems.push(`subjects[${i}].namespace: required for a ServiceAccount`);
      }
    });
  }
  return problems;
}

function webhookRules(webhooks: readonly Record<string, unknown>[]): string[] {
  const problems: string[] = [];
  const names = new Set<string>();
  webhooks.forEach((webhook, i) => {
    const at = `webhooks[${i}]`;
    const name = String(webhook.name ?? '');
    // The API server wants a fully qualified name: a DNS subdomain of at least three labels.
    if (!DNS_SUBDOMAIN.test(name) || name.split('.').length < 3) problems.push(`${at}.name: "${name}" not qualified`);
    if (names.has(name)) problems.push(`${at}.name: duplicate "${name}"`);
    names.add(name);
    const client = record(webhook.clientConfig);
    if ((client.url === undefined) === (client.service === undefined)) {
      problems.push(`${at}.clientConfig: set exactly one of url and service`);
    }
    const timeout = webhook.timeoutSeconds;
    if (typeof timeout === 'number' && (timeout < 1 || timeout > 30)) problems.push(`${at}.timeoutSeconds: 1..30`);
    const versions = Array.isArray(webhook.admissionReviewVersions) ? webhook.admissionReviewVersions : [];
    if (!versions.includes('v1')) problems.push(`${at}.admissionReviewVersions: must include v1`);
    const sideEffects = webhook.sideEffects;
    if (sideEffects !== 'None' && sideEffects !== 'NoneOnDryRun') {
      problems.push(`${at}.sideEffects: must be None or NoneOnDryRun in admissionregistration.k8s.io/v1`);
    }
  });
  return problems;
}
