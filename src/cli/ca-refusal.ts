// What `meshauth cert …` reports when the CA refuses a call: the CA client's error, with what a one-shot command
// knows and the agent does not (the join token just sent is spent; the --bundle is input to fix, not a CA to retry).
// And what `meshauth ca serve` in a pod reports when its CA Secret is empty: the commands that make one.
import { caChainUntrusted, JOIN_TOKEN_SINGLE_USE } from '../agent/ca-client.js';
import { caBundlePatchCommandFor } from '../ca/k8s-manifests.js';
import { isMeshauthError, MeshauthError } from '../errors/index.js';
import { type CertificateFiles, NEW_SVID_HINT } from './cert-trust.js';

export interface CaCallContext {
  /** The call carried a join token (`cert request`). */
  readonly joinToken: boolean;
  /** The call authenticated with a client certificate (`cert renew`, `cert token`): its --cert and --bundle files. */
  readonly clientCert?: CertificateFiles;
  /**
   * That certificate leads to none of the --bundle's roots (checkTrustedByBundle): what a refusal of it means. The CA
   * may have trusted a root the bundle lacks, so the call was made.
   */
  readonly notUnderBundle?: MeshauthError;
}

/**
 * The error to report for `error`, thrown by a call to the CA:
 * - a CA certificate that does not chain to the --bundle: MESHAUTH_ERR_SVID_UNKNOWN_CA, exit 2. The CA client keeps
 *   it MESHAUTH_ERR_CA_UNAVAILABLE for the agent, which retries; here nothing but other input mends it, and exit 1
 *   read as "try again later".
 * - a join token refused: the CA's "credential rejected", and why a new token is needed.
 * - a client certificate refused: which one, and what to do. Not under the --bundle's roots: the caller's verdict
 *   on it. Under them: that bundle holds a root the CA itself does not trust.
 */
export function caRefusal(error: unknown, context: CaCallContext): unknown {
  if (caChainUntrusted(error)) {
    const refused = error as MeshauthError;
    return new MeshauthError('MESHAUTH_ERR_SVID_UNKNOWN_CA', refused.message, {
      reason: 'ca_untrusted',
      cause: refused,
    });
  }
  if (context.joinToken && isMeshauthError(error, 'MESHAUTH_ERR_CA_UNAUTHENTICATED')) {
    return new MeshauthError(
      error.code,
      `${error.message}: the CA refused the join token (unknown, expired or used): ${JOIN_TOKEN_SINGLE_USE}; ` +
        'create a new one with `meshauth ca token create --id <spiffe-id>`',
      {
        ...(error.reason === undefined ? {} : { reason: error.reason }),
        ...(error.detail === undefined ? {} : { detail: error.detail }),
        cause: error,
      },
    );
  }
  if (context.clientCert !== undefined && isMeshauthError(error, 'MESHAUTH_ERR_CA_UNAUTHENTICATED')) {
    if (context.notUnderBundle !== undefined) return context.notUnderBundle;
    const { cert, bundle } = context.clientCert;
    return new MeshauthError(
      error.code,
      `${error.message}: the CA does not trust the certificate in --cert ${cert}, though it chains to --bundle ` +
        `${bundle}: it was not issued under the CA's own roots (another CA's, or a root the CA has retired, still ` +
        `in that bundle): give --ca-url and --bundle of the CA that issued it, or ${NEW_SVID_HINT}`,
      {
        ...(error.reason === undefined ? {} : { reason: error.reason }),
        ...(error.detail === undefined ? {} : { detail: error.detail }),
        cause: error,
      },
    );
  }
  return error;
}

export interface EmptySecretContext {
  /** The CA directory `ca serve --dir` found without a CA. */
  readonly dir: string;
  /** The CA Secret's name (`--k8s-secret`). */
  readonly secret: string;
  /** The namespace the CA runs in. */
  readonly namespace: string;
}

/** Where the printed commands leave the CA (the default of `ca init --out`). */
const OUT_DIR = 'meshauth-ca';
const APP_NAMESPACE = '<app namespace>';

/**
 * A Kubernetes CA whose Secret is empty or not mounted cannot start, and the distroless image has no shell to fix it
 * from inside: the error says once, exactly, what to run outside (MESHAUTH_ERR_CA_NOT_INITIALIZED, exit 2). The
 * commands are the first install's, in its order: secrets.yaml holds a trust-bundle ConfigMap for every app
 * namespace (without --bundle-namespace their sidecars never get the bundle), each namespace must exist before it
 * is applied, and the webhook's certificate is new, so its caBundle is patched again. The base is not applied
 * again: it is what runs this pod, perhaps from the user's own overlay.
 */
export function emptyCaSecretRefusal(context: EmptySecretContext): MeshauthError {
  const { dir, secret, namespace } = context;
  const createNamespace = (ns: string) =>
    `  kubectl create namespace ${ns} --dry-run=client -o yaml | kubectl apply -f -`;
  const lines = [
    `  meshauth ca init --trust-domain <your trust domain> --k8s-secret ${secret} --namespace ${namespace} --bundle-namespace ${APP_NAMESPACE} --out ${OUT_DIR}`,
    createNamespace(namespace),
    createNamespace(APP_NAMESPACE),
    `  kubectl apply -f ${OUT_DIR}/secrets.yaml`,
    `  ${caBundlePatchCommandFor(`<base64 of ${OUT_DIR}/webhook-ca-bundle.pem>`)}`,
  ];
  return new MeshauthError(
    'MESHAUTH_ERR_CA_NOT_INITIALIZED',
    `no CA in ${dir}: the Secret ${secret} is missing or empty. Create it once, outside the cluster, and keep the ` +
      `directory it makes (it holds the root key); ${APP_NAMESPACE} is each namespace whose pods get the sidecar ` +
      `(repeat --bundle-namespace and the create line for each), and ca init prints the patch with its value filled in:\n` +
      `${lines.join('\n')}\n` +
      `then this Deployment starts by itself (or: kubectl -n ${namespace} rollout restart deployment/meshauth-ca)`,
    { reason: 'empty_secret' },
  );
}

/**
 * A Kubernetes CA whose Secret holds some of the CA's files but not all (edited by hand, applied from a file cut
 * short): running `ca init` again would make another CA, so the error says to apply the kept `secrets.yaml` again
 * (MESHAUTH_ERR_CA_NOT_INITIALIZED, reason `incomplete_secret`, exit 2).
 */
export function incompleteCaSecretRefusal(
  context: EmptySecretContext & { readonly missing: readonly string[] },
): MeshauthError {
  const { dir, secret, namespace, missing } = context;
  return new MeshauthError(
    'MESHAUTH_ERR_CA_NOT_INITIALIZED',
    `no whole CA in ${dir}: the Secret ${secret} lacks ${missing.join(', ')}. Apply the secrets.yaml that \`meshauth ` +
      `ca init --k8s-secret\` wrote again, from the directory you kept (do not run ca init again: that makes another ` +
      `CA):\n  kubectl apply -f ${OUT_DIR}/secrets.yaml\n` +
      `then this Deployment starts by itself (or: kubectl -n ${namespace} rollout restart deployment/meshauth-ca)`,
    { reason: 'incomplete_secret' },
  );
}
