// The Kubernetes objects `ca init --k8s-secret` and `ca rotate … --k8s-secret` write (pure): the CA Secret (what
// `ca serve --dir /etc/meshauth/ca` reads: root.crt, intermediate.crt, intermediate.key, bundle.pem, jwt.key and
// jwt-retired.json when present — never root.key), the webhook's kubernetes.io/tls Secret, and the trust-bundle
// ConfigMap in the CA's namespace and in every namespace whose sidecars need the bundle.
import { stringify } from 'yaml';

export const TRUST_BUNDLE_CONFIGMAP = 'meshauth-trust-bundle';
export const WEBHOOK_TLS_SECRET = 'meshauth-webhook-tls';
export const WEBHOOK_SERVICE = 'meshauth-webhook';
export const WEBHOOK_CONFIGURATION = 'meshauth-injector';
const LABELS = { 'app.kubernetes.io/name': 'meshauth', 'app.kubernetes.io/part-of': 'meshauth' };

/** Files of the CA directory that go into the CA Secret, in this order; the root key is never one of them. */
export const CA_SECRET_FILES = ['root.crt', 'intermediate.crt', 'intermediate.key', 'bundle.pem', 'jwt.key'] as const;
export const OPTIONAL_CA_SECRET_FILES = ['jwt-retired.json'] as const;

export interface CaSecretInput {
  readonly name: string;
  readonly namespace: string;
  /** File name → content, for CA_SECRET_FILES and any OPTIONAL_CA_SECRET_FILES present. */
  readonly files: Readonly<Record<string, string>>;
}

export function caSecret(input: CaSecretInput): Record<string, unknown> {
  const data: Record<string, string> = {};
  for (const [file, content] of Object.entries(input.files)) {
    if (file === 'root.key' || file.endsWith('-next.key') || file.endsWith('-previous.key')) {
      throw new Error(`refusing to put ${file} into a Secret`); // a programming error, never user input
    }
    data[file] = Buffer.from(content, 'utf8').toString('base64');
  }
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: input.name,
      namespace: input.namespace,
      labels: { ...LABELS, 'app.kubernetes.io/component': 'ca' },
    },
    type: 'Opaque',
    data,
  };
}

export function webhookTlsSecret(input: {
  readonly namespace: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly caPem: string;
}): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: WEBHOOK_TLS_SECRET,
      namespace: input.namespace,
      labels: { ...LABELS, 'app.kubernetes.io/component': 'webhook' },
    },
    type: 'kubernetes.io/tls',
    data: {
      'tls.crt': base64(input.certPem),
      'tls.key': base64(input.keyPem),
      'ca.crt': base64(input.caPem),
    },
  };
}

export function trustBundleConfigMap(namespace: string, bundlePem: string): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: TRUST_BUNDLE_CONFIGMAP,
      namespace,
      labels: { ...LABELS, 'app.kubernetes.io/component': 'trust-bundle' },
    },
    data: { 'bundle.pem': bundlePem },
  };
}

/** DNS names the API server may use for the webhook Service (it calls `<service>.<namespace>.svc`). */
export function webhookDnsNames(namespace: string): string[] {
  return [
    `${WEBHOOK_SERVICE}.${namespace}.svc`,
    `${WEBHOOK_SERVICE}.${namespace}.svc.cluster.local`,
    `${WEBHOOK_SERVICE}.${namespace}`,
    WEBHOOK_SERVICE,
  ];
}

/** The exact command that puts the webhook CA into the MutatingWebhookConfiguration (every webhook in it). */
export function caBundlePatchCommand(caPem: string, webhooks = 1): string {
  return caBundlePatchCommandFor(base64(caPem), webhooks);
}

/**
 * The same command with `value` as written (the base64 of the CA, or a placeholder for it in a message). `add`, not
 * `replace`: the shipped manifest never sets caBundle, and a strict JSON Patch refuses to replace a member that
 * does not exist; `add` on an object member sets it whether or not it is there, so re-running the line is fine too.
 */
export function caBundlePatchCommandFor(value: string, webhooks = 1): string {
  const ops = Array.from({ length: webhooks }, (_, i) => ({
    op: 'add',
    path: `/webhooks/${i}/clientConfig/caBundle`,
    value,
  }));
  return `kubectl patch mutatingwebhookconfiguration ${WEBHOOK_CONFIGURATION} --type=json -p '${JSON.stringify(ops)}'`;
}

/** Multi-document YAML, one object per document, with a header comment. */
export function toYamlDocuments(header: string, objects: readonly Record<string, unknown>[]): string {
  const comment = header
    .split('\n')
    .map((line) => `# ${line}`.trimEnd())
    .join('\n');
  return `${comment}\n${objects.map((object) => `---\n${stringify(object, { lineWidth: 0 })}`).join('')}`;
}

function base64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}
