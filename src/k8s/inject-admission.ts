// The admission webhook's decision (admission.k8s.io/v1): an AdmissionReview in, the AdmissionReview answer out,
// with a JSON Patch computed from the same pure injection `meshauth inject` uses. Pods are injected on
// CREATE; Services gain the mesh port on CREATE and UPDATE. Whatever cannot be handled is admitted unpatched with
// a warning (or refused when failClosed is set): the webhook never blocks a rollout by surprise. Pure.

import { errorMessage } from '../errors/index.js';
import type { InjectConfig } from './inject-config.js';
import { isObject, type JsonObject, objectAt, stringAt } from './inject-json.js';
import { diffJson } from './inject-json-patch.js';
import { describeObject, injectObject } from './inject-object.js';

/**
 * `invalid`: a body the API server never sends (not an AdmissionReview, not JSON). Kept apart from `error`, which
 * means a real review the webhook could not handle (a pod admitted without its sidecar, the alert's subject), so
 * whoever reaches the port cannot raise that alert with junk.
 */
export type ReviewResult = 'injected' | 'skipped' | 'error' | 'invalid';

export interface ReviewOutcome {
  /** HTTP status of the answer: 200 for every review with a uid, 400 for a body that is not a review. */
  readonly httpStatus: number;
  readonly body: unknown;
  readonly result: ReviewResult;
  /** Bounded reason for the log line (never user input). */
  readonly reason: string;
  readonly warnings: readonly string[];
  /** What the log line says about the object (kind namespace/name). */
  readonly object: string | undefined;
  /**
   * `config.meshauth.dev/` keys of an injected pod that are no setting (ignored, with a warning): the pod creator's
   * input, so at most MAX_WARNINGS of them, each cut to MAX_KEY_CHARS, for the log line.
   */
  readonly unknownAnnotations: readonly string[];
}

const API_VERSION = 'admission.k8s.io/v1';
/** Kubernetes shows warnings to kubectl users; it truncates long ones, so keep them short. */
const MAX_WARNING_CHARS = 256;
const MAX_WARNINGS = 8;
/** An annotation key is at most 317 characters once the API server has validated it; the webhook sees it before. */
const MAX_KEY_CHARS = 320;
/**
 * Namespaces whose pods are never injected, whatever their labels: the cluster's own components (CoreDNS, kube-proxy)
 * must start without a CA that may itself depend on them. The meshauth namespace is kept out by the opt-out
 * annotation on the CA's and webhook's pod templates (its name is the user's to choose) and by the
 * MutatingWebhookConfiguration's namespaceSelector.
 */
const NEVER_INJECTED_NAMESPACES: ReadonlySet<string> = new Set(['kube-system', 'kube-public', 'kube-node-lease']);
/** The API server's limit on the total size of an object's annotations (names and values), in bytes. */
export const MAX_ANNOTATION_BYTES = 256 * 1024;

export function reviewAdmission(review: unknown, config: InjectConfig): ReviewOutcome {
  const request = isObject(review) ? objectAt(review, 'request') : undefined;
  const uid = stringAt(request, 'uid');
  if (!isObject(review) || review.apiVersion !== API_VERSION || review.kind !== 'AdmissionReview' || !request || !uid) {
    return {
      httpStatus: 400,
      body: { error: `expected an ${API_VERSION} AdmissionReview with request.uid` },
      result: 'invalid',
      reason: 'not_a_review',
      warnings: [],
      object: undefined,
      unknownAnnotations: [],
    };
  }
  const kind = stringAt(objectAt(request, 'kind'), 'kind');
  const group = stringAt(objectAt(request, 'kind'), 'group') ?? '';
  const operation = stringAt(request, 'operation');
  const object = objectAt(request, 'object');
  const answer = (
    result: ReviewResult,
    reason: string,
    extra: JsonObject = {},
    warnings: string[] = [],
    unknownAnnotations: readonly string[] = [],
  ): ReviewOutcome => {
    const shown = warnings
      .slice(0, MAX_WARNINGS)
      .map((w) => (w.length > MAX_WARNING_CHARS ? `${w.slice(0, MAX_WARNING_CHARS - 1)}…` : w));
    return {
      httpStatus: 200,
      body: {
        apiVersion: API_VERSION,
        kind: 'AdmissionReview',
        response: { uid, allowed: true, ...extra, ...(shown.length > 0 ? { warnings: shown } : {}) },
      },
      result,
      reason,
      warnings,
      object: object === undefined ? undefined : describeObject({ ...object, kind }),
      unknownAnnotations,
    };
  };

  const handled =
    group === '' &&
    ((kind === 'Pod' && operation === 'CREATE') ||
      (kind === 'Service' && (operation === 'CREATE' || operation === 'UPDATE')));
  if (!handled) return answer('skipped', 'not_handled');
  if (NEVER_INJECTED_NAMESPACES.has(stringAt(request, 'namespace') ?? '')) return answer('skipped', 'system_namespace');
  if (object === undefined) return cannotHandle(answer, config, 'no_object', 'the review carries no object');

  // A pod whose own annotations are past the API server's limit will be refused whatever is done here: answered before
  // the injection reads each of them (a review of megabytes of annotation keys took seconds, and the webhook answers
  // reviews one at a time).
  const sentBytes = annotationSizeOf(object);
  if (sentBytes > MAX_ANNOTATION_BYTES) {
    return cannotHandle(
      answer,
      config,
      'annotations_too_large',
      `the pod's annotations are ${sentBytes} bytes, over the ${MAX_ANNOTATION_BYTES} the API server accepts`,
    );
  }
  // The object as the API server will store it; apiVersion/kind are set for the injection's kind dispatch only.
  const typed: JsonObject = { ...object, apiVersion: 'v1', kind };
  let injected: ReturnType<typeof injectObject>;
  try {
    // A typo in an annotation is a warning here, never a refusal: kubectl prints it to whoever created the pod.
    injected = injectObject(typed, config, { annotationMistakes: 'warn' });
  } catch (error) {
    return cannotHandle(answer, config, 'inject_failed', errorMessage(error));
  }
  const after = isObject(injected.object) ? { ...injected.object } : typed;
  const annotationBytes = annotationSizeOf(after);
  if (annotationBytes > MAX_ANNOTATION_BYTES) {
    // The API server validates after mutation: it would refuse the pod ("Too long") without saying why.
    return cannotHandle(
      answer,
      config,
      'annotations_too_large',
      `with the sidecar's annotations the pod's annotations would be ${annotationBytes} bytes, over the ${MAX_ANNOTATION_BYTES} the API server accepts`,
    );
  }
  if (object.apiVersion === undefined) delete after.apiVersion;
  if (object.kind === undefined) delete after.kind;
  const patch = diffJson(object, after);
  const warnings = [...injected.warnings];
  // Found once, by the injection's own check that wrote the warnings: the log line names the same keys.
  const unknown = (injected.unknownAnnotations ?? []).slice(0, MAX_WARNINGS).map((u) => u.key.slice(0, MAX_KEY_CHARS));
  if (patch.length === 0) return answer('skipped', injected.outcome, {}, warnings, unknown);
  return answer(
    'injected',
    injected.outcome,
    { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') },
    warnings,
    unknown,
  );
}

/** The bytes of an object's annotations (names and values), counted as the API server does. */
function annotationSizeOf(object: JsonObject): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(objectAt(objectAt(object, 'metadata') ?? {}, 'annotations') ?? {})) {
    bytes += Buffer.byteLength(name) + (typeof value === 'string' ? Buffer.byteLength(value) : 0);
  }
  return bytes;
}

function cannotHandle(
  answer: (result: ReviewResult, reason: string, extra?: JsonObject, warnings?: string[]) => ReviewOutcome,
  config: InjectConfig,
  reason: string,
  message: string,
): ReviewOutcome {
  const warning = `meshauth: sidecar not injected: ${message}`;
  if (!config.failClosed) return answer('error', reason, {}, [warning]);
  return answer('error', reason, { allowed: false, status: { code: 400, message: warning } });
}
