// Checks of the per-workload settings (`config.meshauth.dev/*` annotations) that would otherwise change nothing
// without a word: a key that is no setting (a typo), and a setting written on a workload's own metadata, where
// injection never reads it (only the pod template's reach the pod). A policy lost either way leaves the sidecar
// allowing every authenticated peer. Pure; the caller says whether a finding stops it or becomes a warning.
import { closestKey } from '../config/key-suggestion.js';
import { MeshauthError } from '../errors/index.js';
import { type JsonObject, objectAt, objectAtPath, stringAt } from './inject-json.js';
import { CONFIG_ANNOTATION_PREFIX, CONFIG_ANNOTATIONS } from './inject-names.js';

/**
 * `refuse`: `meshauth inject` stops (exit 2) rather than print a sidecar without the setting the user asked for.
 * `warn`: the webhook admits the pod and says why (a typo must not keep a rollout's pods from being created).
 */
export type AnnotationMistakes = 'refuse' | 'warn';

export interface UnknownAnnotation {
  readonly key: string;
  /** The setting it is closest to, when one is close enough to be what was meant. */
  readonly suggestion: string | undefined;
}

const SETTING_NAMES = CONFIG_ANNOTATIONS.map((key) => key.slice(CONFIG_ANNOTATION_PREFIX.length));
/** Unknown keys given a suggestion: the first few (a review reports no more), not every one a pod may carry. */
const MAX_SUGGESTIONS = 8;

/** The `config.meshauth.dev/` keys of these metadata that are none of the settings. */
export function unknownConfigAnnotations(metadata: JsonObject | undefined): UnknownAnnotation[] {
  const annotations = objectAt(metadata ?? {}, 'annotations') ?? {};
  return Object.keys(annotations)
    .filter((key) => key.startsWith(CONFIG_ANNOTATION_PREFIX) && !CONFIG_ANNOTATIONS.includes(key))
    .map((key, index) => {
      const near =
        index < MAX_SUGGESTIONS ? closestKey(key.slice(CONFIG_ANNOTATION_PREFIX.length), SETTING_NAMES) : undefined;
      return { key, suggestion: near === undefined ? undefined : `${CONFIG_ANNOTATION_PREFIX}${near}` };
    });
}

export interface MisplacedAnnotation {
  readonly key: string;
  /** Where it was found: `metadata` (the object's own) or e.g. `spec.jobTemplate.metadata`. */
  readonly at: string;
  /** The pod template's value of the same key, when it has one that differs. */
  readonly templateValue: unknown;
}

/**
 * Settings on the metadata enclosing the pod template at `templatePath` (the object's own, and a CronJob's
 * jobTemplate's) that the template does not carry with the same value. Each node on the path followed by `spec`
 * is an object with metadata of its own.
 */
export function misplacedConfigAnnotations(object: JsonObject, templatePath: readonly string[]): MisplacedAnnotation[] {
  const template = objectAtPath(object, templatePath);
  const inTemplate = objectAt(objectAt(template ?? {}, 'metadata') ?? {}, 'annotations') ?? {};
  const found: MisplacedAnnotation[] = [];
  for (let i = 0; i < templatePath.length; i++) {
    if (templatePath[i] !== 'spec') continue;
    const prefix = templatePath.slice(0, i);
    const annotations = objectAt(objectAt(objectAtPath(object, prefix) ?? {}, 'metadata') ?? {}, 'annotations') ?? {};
    for (const [key, value] of Object.entries(annotations)) {
      if (!key.startsWith(CONFIG_ANNOTATION_PREFIX)) continue;
      if (Object.hasOwn(inTemplate, key) && inTemplate[key] === value) continue;
      const at = [...prefix, 'metadata'].join('.');
      found.push({ key, at, templateValue: Object.hasOwn(inTemplate, key) ? inTemplate[key] : undefined });
    }
  }
  return found;
}

export interface AnnotationFindings {
  /** One sentence per mistake, each starting with `where`. */
  readonly warnings: readonly string[];
  /** The pod template's keys that are no setting, found once here so the webhook's log line and metric reuse them. */
  readonly unknown: readonly UnknownAnnotation[];
}

/**
 * Both checks for a workload about to be injected (`object` and its template at `templatePath`, as given, before
 * injection): what to report, or, with `refuse`, a MeshauthError for the first kind of mistake found.
 */
export function checkConfigAnnotations(
  object: JsonObject,
  templatePath: readonly string[],
  where: string,
  mistakes: AnnotationMistakes,
): AnnotationFindings {
  const target = `${[...templatePath, 'metadata', 'annotations'].join('.')}`;
  const misplaced = misplacedConfigAnnotations(object, templatePath).map((m) => {
    const place =
      m.at === 'metadata'
        ? `the ${stringAt(object, 'kind') ?? 'object'}'s own metadata.annotations`
        : `${m.at}.annotations`;
    const template =
      m.templateValue === undefined
        ? 'where injection does not read it: the sidecar would run without it'
        : `where injection does not read it: the sidecar gets the pod template's ${JSON.stringify(m.templateValue)}`;
    return `annotation ${m.key} is on ${place}, ${template}; put it on ${target}`;
  });
  const unknownFound = unknownConfigAnnotations(objectAt(objectAtPath(object, templatePath) ?? {}, 'metadata'));
  const unknown = unknownFound.map(
    (u) =>
      `annotation ${u.key} is not a meshauth setting${u.suggestion === undefined ? '' : ` (did you mean ${u.suggestion}?)`}`,
  );
  if (mistakes === 'refuse') {
    if (misplaced.length > 0) {
      throw new MeshauthError('MESHAUTH_ERR_MANIFEST_ANNOTATION_MISPLACED', `${where}: ${misplaced.join('; ')}`, {
        reason: 'inject_annotation_misplaced',
      });
    }
    if (unknown.length > 0) {
      throw new MeshauthError(
        'MESHAUTH_ERR_MANIFEST_ANNOTATION_UNKNOWN',
        `${where}: ${unknown.join('; ')}; the settings are ${CONFIG_ANNOTATIONS.join(', ')}`,
        { reason: 'inject_annotation_unknown' },
      );
    }
    return { warnings: [], unknown: [] };
  }
  return {
    warnings: [...misplaced, ...unknown.map((u) => `${u}; ignored`)].map((w) => `${where}: ${w}`),
    unknown: unknownFound,
  };
}
