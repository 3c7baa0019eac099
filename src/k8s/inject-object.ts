// Injection by object kind: workloads (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob) get the
// sidecar in their pod template, Services in front of injected pods get the mesh port, every other object passes
// through untouched. Pure: objects in, new objects out (the inputs are never modified).
import { type AnnotationMistakes, checkConfigAnnotations, type UnknownAnnotation } from './inject-annotations.js';
import type { InjectConfig } from './inject-config.js';
import { isObject, type JsonObject, objectAt, objectAtPath, stringAt } from './inject-json.js';
import { injectTemplate, optedOut, uninjectTemplate } from './inject-pod.js';
import { retargetService, serviceSelector, unretargetService } from './inject-service.js';

export type ObjectOutcome = 'injected' | 'retargeted' | 'opted-out' | 'host-network' | 'windows' | 'unchanged';

export interface InjectOptions {
  /**
   * What a `config.meshauth.dev/*` annotation that would change nothing does (a key that is no setting, or a
   * setting on a workload's own metadata instead of its pod template's). Default `refuse`, what `meshauth inject`
   * wants; the webhook, which must not keep pods from being created, asks for `warn`.
   */
  readonly annotationMistakes?: AnnotationMistakes;
}

export interface ObjectResult {
  readonly object: unknown;
  readonly outcome: ObjectOutcome;
  readonly warnings: readonly string[];
  /**
   * `config.meshauth.dev/` keys of an injected workload's pod template that are no setting (with `annotationMistakes:
   * 'warn'`; `refuse` throws instead). Absent where nothing was checked.
   */
  readonly unknownAnnotations?: readonly UnknownAnnotation[];
}

/** Where each workload kind keeps its pod template. */
const TEMPLATE_PATHS: Readonly<
  Record<string, { readonly apiVersions: readonly string[]; readonly path: readonly string[] }>
> = {
  Pod: { apiVersions: ['v1'], path: [] },
  Deployment: { apiVersions: ['apps/v1'], path: ['spec', 'template'] },
  StatefulSet: { apiVersions: ['apps/v1'], path: ['spec', 'template'] },
  DaemonSet: { apiVersions: ['apps/v1'], path: ['spec', 'template'] },
  ReplicaSet: { apiVersions: ['apps/v1'], path: ['spec', 'template'] },
  Job: { apiVersions: ['batch/v1'], path: ['spec', 'template'] },
  CronJob: { apiVersions: ['batch/v1'], path: ['spec', 'jobTemplate', 'spec', 'template'] },
};

/** "Deployment shop/orders": how messages name an object. */
export function describeObject(object: unknown): string {
  if (!isObject(object)) return 'document';
  const metadata = objectAt(object, 'metadata');
  const name = stringAt(metadata, 'name') ?? stringAt(metadata, 'generateName') ?? '(unnamed)';
  const namespace = stringAt(metadata, 'namespace');
  return `${stringAt(object, 'kind') ?? 'object'} ${namespace === undefined ? name : `${namespace}/${name}`}`;
}

/** The pod template of a workload object, or undefined for every other kind. */
export function podTemplateOf(object: JsonObject): JsonObject | undefined {
  const path = templatePathOf(object);
  return path === undefined ? undefined : objectAtPath(object, path);
}

/** Where a workload object keeps its pod template ([] for a Pod), or undefined for every other kind. */
function templatePathOf(object: JsonObject): readonly string[] | undefined {
  const kind = stringAt(object, 'kind');
  const entry = kind === undefined ? undefined : TEMPLATE_PATHS[kind];
  if (entry === undefined || !entry.apiVersions.includes(stringAt(object, 'apiVersion') ?? '')) return undefined;
  return entry.path;
}

export function isService(object: unknown): boolean {
  return isObject(object) && object.kind === 'Service' && object.apiVersion === 'v1';
}

/**
 * Injects one object. Services are retargeted whenever they select pods (the webhook's case: every selecting
 * Service of an opted-in namespace); injectObjects narrows that to Services in front of injected workloads.
 */
export function injectObject(object: unknown, config: InjectConfig, options: InjectOptions = {}): ObjectResult {
  if (!isObject(object)) return { object, outcome: 'unchanged', warnings: [] };
  const where = describeObject(object);
  const copy = structuredClone(object);
  if (isService(copy)) {
    const outcome = retargetService(copy, where);
    return {
      object: copy,
      outcome: outcome.kind === 'retargeted' ? 'retargeted' : 'unchanged',
      warnings: outcome.warnings,
    };
  }
  if (copy.kind === 'List' && Array.isArray(copy.items)) {
    const results = injectObjects(copy.items, config, options);
    copy.items = results.map((r) => r.object);
    const changed = results.some((r) => r.outcome === 'injected' || r.outcome === 'retargeted');
    return {
      object: copy,
      outcome: changed ? 'injected' : 'unchanged',
      warnings: results.flatMap((r) => r.warnings),
      unknownAnnotations: results.flatMap((r) => r.unknownAnnotations ?? []),
    };
  }
  const template = podTemplateOf(copy);
  if (template === undefined) return { object, outcome: 'unchanged', warnings: [] };
  if (optedOut(objectAt(copy, 'metadata'))) return { object, outcome: 'opted-out', warnings: [] };
  const outcome = injectTemplate(template, config, where);
  if (outcome.kind === 'skipped') return { object, outcome: outcome.reason, warnings: outcome.warnings };
  // Only a workload that gets the sidecar: the settings of one left alone change nothing anyway. The object as
  // given is checked (the copy now carries injection's own annotations). First among the warnings, which the
  // webhook caps: a setting lost is what the user most needs to hear about.
  const mistakes = checkConfigAnnotations(
    object,
    templatePathOf(object) ?? [],
    where,
    options.annotationMistakes ?? 'refuse',
  );
  return {
    object: copy,
    outcome: 'injected',
    warnings: [...mistakes.warnings, ...outcome.warnings],
    unknownAnnotations: mistakes.unknown,
  };
}

/**
 * Injects a stream of objects (a multi-document file). A Service is retargeted only when its selector matches the
 * pod template labels of a workload injected in the same stream and namespace.
 */
export function injectObjects(
  objects: readonly unknown[],
  config: InjectConfig,
  options: InjectOptions = {},
): ObjectResult[] {
  const results: (ObjectResult | undefined)[] = objects.map((o) =>
    isService(o) ? undefined : injectObject(o, config, options),
  );
  const injectedPods: { namespace: string | undefined; labels: JsonObject }[] = [];
  for (const result of results) {
    if (result?.outcome !== 'injected' || !isObject(result.object)) continue;
    const template = podTemplateOf(result.object);
    if (template === undefined) continue;
    injectedPods.push({
      namespace: stringAt(objectAt(result.object, 'metadata'), 'namespace'),
      labels: objectAt(objectAt(template, 'metadata') ?? {}, 'labels') ?? {},
    });
  }
  return objects.map((object, i) => {
    const done = results[i];
    if (done !== undefined) return done;
    const service = object as JsonObject;
    const selector = serviceSelector(service);
    const namespace = stringAt(objectAt(service, 'metadata'), 'namespace');
    const selects = injectedPods.some(
      (pod) =>
        pod.namespace === namespace &&
        selector !== undefined &&
        Object.entries(selector).every(([k, v]) => String(pod.labels[k]) === v),
    );
    // Other Services stay as they are (one retargeted earlier keeps its mesh port: inject never takes away).
    return selects ? injectObject(service, config, options) : unchanged(service);
  });
}

/** Undoes injectObject; objects that were not injected come back unchanged. */
export function uninjectObject(object: unknown): ObjectResult {
  if (!isObject(object)) return { object, outcome: 'unchanged', warnings: [] };
  const copy = structuredClone(object);
  if (isService(copy)) {
    return unretargetService(copy) ? { object: copy, outcome: 'retargeted', warnings: [] } : unchanged(object);
  }
  if (copy.kind === 'List' && Array.isArray(copy.items)) {
    const results = copy.items.map((item) => uninjectObject(item));
    copy.items = results.map((r) => r.object);
    return results.some((r) => r.outcome !== 'unchanged')
      ? { object: copy, outcome: 'injected', warnings: [] }
      : unchanged(object);
  }
  const template = podTemplateOf(copy);
  if (template === undefined || !uninjectTemplate(template)) return unchanged(object);
  return { object: copy, outcome: 'injected', warnings: [] };
}

function unchanged(object: unknown): ObjectResult {
  return { object, outcome: 'unchanged', warnings: [] };
}
