// inject.yaml: the cluster-wide settings of `meshauth inject` and the webhook. Validated whole with a strict zod
// schema (unknown keys rejected; messages name the file, the key and what was expected), then defaulted in a
// second step. Pure: the CLI and the webhook read the file.
import { z } from 'zod';
import { booleanFlag } from '../config/boolean-flag.js';
import { configProblemLines } from '../config/config-issue.js';
import { refuseForeignIds } from '../config/id-trust-domain.js';
import { type EndUserFile, endUserSchema, parseYamlText, spiffeIdSchema } from '../config/index.js';
import { configIssueMessage } from '../config/issue-message.js';
import { schemaLeafPaths } from '../config/schema-keys.js';
import { MeshauthError } from '../errors/index.js';
import { TrustDomain } from '../identity/index.js';
import { checkQuantity } from './inject-quantity.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const INJECT_DEFAULTS = Object.freeze({
  trustDomain: 'cluster.local',
  image: 'meshauth:0.2.0',
  imagePullPolicy: 'IfNotPresent',
  caUrl: 'https://meshauth-ca.meshauth.svc:8443',
  clusterDomain: 'cluster.local',
  // Idle RSS of the sidecar is about 90 MiB; the limit leaves room for bursts of concurrent streams.
  proxy: Object.freeze({ cpu: '50m', memory: '128Mi', cpuLimit: '1', memoryLimit: '256Mi' }),
  logLevel: 'info' as LogLevel,
  failClosed: false,
});

// Checked as the proxy-cpu/proxy-memory annotations are: a value the cluster cannot hold (1e400, -1, 0.0000000001)
// is refused when inject.yaml loads, not by the API server in every injected pod.
const quantity = z.string().superRefine((text, ctx) => {
  const checked = checkQuantity(text);
  if (!checked.ok) ctx.addIssue({ code: 'custom', message: checked.expected });
});
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

export const injectConfigSchema = z
  .strictObject({
    trustDomain: z
      .string()
      .refine(isTrustDomain, { message: 'expected a trust domain such as example.org (no spiffe://, no path)' })
      .optional(),
    image: z.string().min(1, { message: 'expected an image reference such as meshauth:0.2.0' }).optional(),
    imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).optional(),
    ca: z
      .strictObject({
        url: z
          .string()
          .refine((v) => URL.canParse(v) && v.startsWith('https://'), {
            message: 'expected an https:// URL such as https://meshauth-ca.meshauth.svc:8443',
          })
          .optional(),
      })
      .optional(),
    clusterDomain: z.string().regex(DNS_NAME, { message: 'expected a DNS domain such as cluster.local' }).optional(),
    proxy: z
      .strictObject({
        cpu: quantity.optional(),
        memory: quantity.optional(),
        cpuLimit: quantity.optional(),
        memoryLimit: quantity.optional(),
      })
      .optional(),
    logLevel: z.enum(LOG_LEVELS).optional(),
    noProxy: z
      .array(z.string().regex(/^[^\s,]+$/, { message: 'expected a host, domain or address without spaces or commas' }))
      .optional(),
    failClosed: booleanFlag().optional(),
    // The sidecars' `inbound.endUser` (issuers of end-user tokens), mesh-wide; a pod's
    // `config.meshauth.dev/end-user` ConfigMap replaces it for that pod.
    endUser: endUserSchema.optional(),
    // Every sidecar's `inbound.trustForwardedFrom`: the peers whose X-Forwarded-* reach the app (the gateway, when
    // its routes' services have no end-user settings naming it a voucher).
    trustForwardedFrom: z.array(spiffeIdSchema).optional(),
  })
  .superRefine(vouchersInTrustDomain);

export type InjectFile = z.infer<typeof injectConfigSchema>;

export interface ProxyResources {
  readonly cpu: string;
  readonly memory: string;
  readonly cpuLimit: string;
  readonly memoryLimit: string;
}

/** The defaulted settings every injection reads. */
export interface InjectConfig {
  readonly trustDomain: string;
  readonly image: string;
  readonly imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  readonly caUrl: string;
  readonly clusterDomain: string;
  readonly proxy: ProxyResources;
  readonly logLevel: LogLevel;
  readonly noProxy: readonly string[];
  /** Webhook only: refuse (instead of admit unpatched) a review that cannot be handled. */
  readonly failClosed: boolean;
  /** Mesh-wide `inbound.endUser` written into every sidecar's config (undefined: no end-user tokens). */
  readonly endUser: EndUserFile | undefined;
  /** Mesh-wide `inbound.trustForwardedFrom` (undefined: each sidecar's default, its end-user vouchers). */
  readonly trustForwardedFrom: readonly string[] | undefined;
}

export function resolveInjectConfig(file: InjectFile = {}): InjectConfig {
  return Object.freeze({
    trustDomain: file.trustDomain ?? INJECT_DEFAULTS.trustDomain,
    image: file.image ?? INJECT_DEFAULTS.image,
    imagePullPolicy: file.imagePullPolicy ?? INJECT_DEFAULTS.imagePullPolicy,
    caUrl: file.ca?.url ?? INJECT_DEFAULTS.caUrl,
    clusterDomain: file.clusterDomain ?? INJECT_DEFAULTS.clusterDomain,
    proxy: Object.freeze({
      cpu: file.proxy?.cpu ?? INJECT_DEFAULTS.proxy.cpu,
      memory: file.proxy?.memory ?? INJECT_DEFAULTS.proxy.memory,
      cpuLimit: file.proxy?.cpuLimit ?? INJECT_DEFAULTS.proxy.cpuLimit,
      memoryLimit: file.proxy?.memoryLimit ?? INJECT_DEFAULTS.proxy.memoryLimit,
    }),
    logLevel: file.logLevel ?? INJECT_DEFAULTS.logLevel,
    noProxy: Object.freeze([...(file.noProxy ?? [])]),
    failClosed: file.failClosed ?? INJECT_DEFAULTS.failClosed,
    endUser: file.endUser === undefined ? undefined : structuredClone(file.endUser),
    trustForwardedFrom: file.trustForwardedFrom === undefined ? undefined : Object.freeze([...file.trustForwardedFrom]),
  });
}

/** Parses and validates inject.yaml text; `source` (the file name) starts every message. */
export function parseInjectConfig(text: string, source: string): InjectConfig {
  const parsed = parseYamlText(text, source);
  const document = parsed ?? {};
  const result = injectConfigSchema.safeParse(document, { error: configIssueMessage });
  if (!result.success) {
    const context = { data: document, leafPaths: injectLeafPaths, reference: 'see docs/injection.md' };
    // All of them, unbounded, as inject.yaml's problems have always been listed.
    const lines = configProblemLines(source, result.error.issues, context, Number.POSITIVE_INFINITY);
    throw new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', lines.join('\n'), {
      reason: 'config_invalid',
      detail: { file: source },
    });
  }
  return resolveInjectConfig(result.data);
}

/**
 * `endUser.vouchers` goes into every injected sidecar's config, which refuses a voucher of another trust domain
 * (meshauth has no federation): refused here, so the mistake shows at `meshauth inject`, not in every pod's start.
 */
function vouchersInTrustDomain(
  file: { trustDomain?: unknown; endUser?: { vouchers?: unknown } | undefined; trustForwardedFrom?: unknown },
  ctx: z.core.$RefinementCtx,
) {
  const own = file.trustDomain ?? INJECT_DEFAULTS.trustDomain;
  if (typeof own !== 'string' || !isTrustDomain(own)) return;
  refuseForeignIds(own, file.endUser?.vouchers, ['endUser', 'vouchers'], ctx);
  refuseForeignIds(own, file.trustForwardedFrom, ['trustForwardedFrom'], ctx);
}

let leafPathCache: readonly string[] | undefined;

/** inject.yaml's key paths (walked on the first unknown key only). */
function injectLeafPaths(): readonly string[] {
  leafPathCache ??= schemaLeafPaths(injectConfigSchema);
  return leafPathCache;
}

function isTrustDomain(value: string): boolean {
  if (value.startsWith('spiffe://')) return false;
  try {
    TrustDomain.parse(value);
    return true;
  } catch {
    return false;
  }
}
