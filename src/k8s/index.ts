// Kubernetes injection: the pure inject/uninject of manifests (inject-*.ts) and the admission webhook beside it.

export {
  type AnnotationMistakes,
  misplacedConfigAnnotations,
  type UnknownAnnotation,
  unknownConfigAnnotations,
} from './inject-annotations.js';
export {
  INJECT_DEFAULTS,
  type InjectConfig,
  injectConfigSchema,
  parseInjectConfig,
  resolveInjectConfig,
} from './inject-config.js';
export { diffJson, escapePointerToken, type PatchOperation, parsePointer } from './inject-json-patch.js';
export * from './inject-names.js';
export {
  describeObject,
  type InjectOptions,
  injectObject,
  injectObjects,
  type ObjectOutcome,
  type ObjectResult,
  uninjectObject,
} from './inject-object.js';
export { sidecarConfigDocument } from './inject-sidecar.js';
export { injectYaml, uninjectYaml, type YamlResult } from './inject-yaml.js';
