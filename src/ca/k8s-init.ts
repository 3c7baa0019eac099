// `ca init --k8s-secret NAME --namespace NS`: a CA made on the operator's machine for a cluster. The CA directory
// (--out) keeps everything including root.key (0600), which never goes into a manifest; secrets.yaml holds what the
// cluster needs (the CA Secret that `ca serve` mounts read-only, the webhook's TLS Secret, the trust-bundle
// ConfigMaps); webhook-ca-bundle.pem is what the MutatingWebhookConfiguration's caBundle must hold.
// `ca rotate … --k8s-secret` rewrites ca-secret.yaml from the directory after a rotation.
import { join } from 'node:path';
import { MeshauthError } from '../errors/index.js';
import { TrustDomain } from '../identity/index.js';
import { createTlsServerIdentity, parseCertificatesPem } from '../pki/index.js';
import { readCaFile, readCaFileIfPresent } from './ca-dir-file.js';
import { caPaths, PRIVATE_FILE_MODE, PUBLIC_FILE_MODE, writeFileAtomic } from './ca-files.js';
import type { InitHolder } from './init-claim.js';
import {
  CA_SECRET_FILES,
  caBundlePatchCommand,
  caSecret,
  OPTIONAL_CA_SECRET_FILES,
  toYamlDocuments,
  trustBundleConfigMap,
  webhookDnsNames,
  webhookTlsSecret,
} from './k8s-manifests.js';
import { CA_CERTIFICATES, parsedCaFile } from './parsed-ca-file.js';
import type { LockWaitOptions } from './rotation-lock.js';
import { initCa } from './store.js';

/** The webhook's serving certificate: long enough to forget, short enough to be a certificate (rerun to renew). */
const WEBHOOK_CERT_TTL_MS = 3 * 365 * 24 * 3600_000;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export interface K8sTarget {
  readonly secretName: string;
  readonly namespace: string;
  /** Further namespaces that get the trust-bundle ConfigMap (the CA's namespace always does). */
  readonly bundleNamespaces: readonly string[];
}

export interface K8sInitOptions extends K8sTarget {
  readonly dir: string;
  readonly trustDomain: string;
  readonly force?: boolean;
  readonly now?: Date;
  /** As initCa's. */
  readonly directoryLock?: LockWaitOptions;
}

export interface K8sInitResult {
  readonly trustDomain: string;
  readonly secretsFile: string;
  readonly webhookCaFile: string;
  readonly rootKeyFile: string;
  readonly intermediateNotAfter: Date;
  readonly patchCommand: string;
  /** As initCa's. */
  readonly interruptedRun: InitHolder | undefined;
}

export function checkK8sTarget(target: K8sTarget): void {
  if (!DNS_SUBDOMAIN.test(target.secretName))
    usage(`--k8s-secret ${JSON.stringify(target.secretName)} is not a Kubernetes name`);
  for (const ns of [target.namespace, ...target.bundleNamespaces]) {
    if (!DNS_LABEL.test(ns)) usage(`namespace ${JSON.stringify(ns)} is not a Kubernetes namespace name (a DNS label)`);
  }
}

export async function initCaForKubernetes(options: K8sInitOptions): Promise<K8sInitResult> {
  checkK8sTarget(options);
  const trustDomain = TrustDomain.parse(options.trustDomain);
  const now = options.now ?? new Date();
  const webhook = await createTlsServerIdentity({
    commonName: `meshauth-webhook.${options.namespace}.svc`,
    dnsNames: webhookDnsNames(options.namespace),
    now,
    ttlMs: WEBHOOK_CERT_TTL_MS,
  });
  const secretsFile = join(options.dir, 'secrets.yaml');
  const webhookCaFile = join(options.dir, 'webhook-ca-bundle.pem');
  // Written before the init counts as finished: a run stopped before them leaves a half-made CA, which the next
  // `ca init --k8s-secret` replaces, instead of a CA without manifests that it refuses to touch.
  const writeManifests = async () => {
    const ca = await caObjects(options.dir, options, '--out');
    await writeFileAtomic(
      secretsFile,
      toYamlDocuments(
        `meshauth CA for trust domain ${trustDomain.name}: kubectl apply -f ${secretsFile}\n` +
          'Holds private keys (the intermediate and the webhook key): do not commit it; root.key is not in it.',
        [
          ca.secret,
          webhookTlsSecret({ namespace: options.namespace, ...webhook, caPem: webhook.caPem }),
          ...ca.bundles,
        ],
      ),
      PRIVATE_FILE_MODE,
    );
    await writeFileAtomic(webhookCaFile, webhook.caPem, PUBLIC_FILE_MODE);
  };
  const { paths, intermediateNotAfter, interruptedRun } = await initCa({
    dir: options.dir,
    trustDomain,
    force: options.force === true,
    now,
    beforeFinish: writeManifests,
    ...(options.directoryLock === undefined ? {} : { directoryLock: options.directoryLock }),
  });
  return {
    trustDomain: trustDomain.name,
    secretsFile,
    webhookCaFile,
    rootKeyFile: paths.rootKey,
    intermediateNotAfter,
    patchCommand: caBundlePatchCommand(webhook.caPem),
    interruptedRun,
  };
}

/** After a rotation: ca-secret.yaml with the CA Secret and the trust-bundle ConfigMaps as the directory holds them. */
export async function writeCaSecretManifest(
  dir: string,
  target: K8sTarget,
): Promise<{ file: string; intermediateNotAfter: Date }> {
  checkK8sTarget(target);
  const ca = await caObjects(dir, target, '--dir');
  const file = join(dir, 'ca-secret.yaml');
  await writeFileAtomic(
    file,
    toYamlDocuments(`meshauth CA Secret after a rotation: kubectl apply -f ${file}`, [ca.secret, ...ca.bundles]),
    PRIVATE_FILE_MODE,
  );
  return { file, intermediateNotAfter: ca.intermediateNotAfter };
}

/** `flag`: the option that named `dir`, for messages (`--out` for `ca init`, `--dir` for `ca rotate`). */
async function caObjects(dir: string, target: K8sTarget, flag: string) {
  const files: Record<string, string> = {};
  // Bounded and regular files only: each goes whole into the Secret, and a FIFO in the directory blocked the command.
  const paths = caPaths(dir);
  for (const name of CA_SECRET_FILES) files[name] = readCaFile(paths, join(dir, name), flag);
  for (const name of OPTIONAL_CA_SECRET_FILES) {
    const text = readCaFileIfPresent(join(dir, name), flag);
    if (text !== undefined) files[name] = text;
  }
  const bundlePem = files['bundle.pem'] as string;
  const namespaces = [...new Set([target.namespace, ...target.bundleNamespaces])];
  const [intermediate] = parsedCaFile(dir, 'intermediate.crt', CA_CERTIFICATES, () =>
    parseCertificatesPem(files['intermediate.crt'] as string),
  );
  return {
    secret: caSecret({ name: target.secretName, namespace: target.namespace, files }),
    bundles: namespaces.map((ns) => trustBundleConfigMap(ns, bundlePem)),
    intermediateNotAfter: intermediate?.notAfter ?? new Date(0),
    rootKey: caPaths(dir).rootKey,
  };
}

function usage(message: string): never {
  throw new MeshauthError('MESHAUTH_ERR_USAGE', message, { reason: 'usage' });
}
