// Structural schemas for the two prometheus-operator custom resources meshauth ships (monitoring.coreos.com/v1
// PodMonitor and PrometheusRule). kubernetes-models knows only built-in kinds; these cover the fields meshauth uses
// plus their common siblings, closed (an unknown key is a problem, as the operator's CRD schema would prune it).
import { z } from 'zod';

const labels = z.record(z.string(), z.string());
const duration = z.string().regex(/^(\d+(ms|s|m|h|d|w|y))+$/, 'a Prometheus duration such as 30s or 5m');

const labelSelector = z.strictObject({
  matchLabels: labels.optional(),
  matchExpressions: z
    .array(
      z.strictObject({
        key: z.string(),
        operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
        values: z.array(z.string()).optional(),
      }),
    )
    .optional(),
});

const relabel = z.strictObject({
  sourceLabels: z.array(z.string()).optional(),
  separator: z.string().optional(),
  targetLabel: z.string().optional(),
  regex: z.string().optional(),
  modulus: z.number().int().optional(),
  replacement: z.string().optional(),
  action: z
    .enum(['replace', 'keep', 'drop', 'hashmod', 'labelmap', 'labeldrop', 'labelkeep', 'lowercase', 'uppercase'])
    .optional(),
});

const secretKey = z.strictObject({ name: z.string(), key: z.string(), optional: z.boolean().optional() });
const tlsConfig = z.strictObject({
  serverName: z.string().optional(),
  insecureSkipVerify: z.boolean().optional(),
  ca: z.strictObject({ secret: secretKey.optional(), configMap: secretKey.optional() }).optional(),
  cert: z.strictObject({ secret: secretKey.optional(), configMap: secretKey.optional() }).optional(),
  keySecret: secretKey.optional(),
});

const metadata = z.strictObject({
  name: z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/),
  namespace: z.string().optional(),
  labels: labels.optional(),
  annotations: labels.optional(),
});

const podMonitor = z.strictObject({
  apiVersion: z.literal('monitoring.coreos.com/v1'),
  kind: z.literal('PodMonitor'),
  metadata,
  spec: z.strictObject({
    jobLabel: z.string().optional(),
    podTargetLabels: z.array(z.string()).optional(),
    selector: labelSelector,
    namespaceSelector: z
      .strictObject({ any: z.boolean().optional(), matchNames: z.array(z.string()).optional() })
      .optional(),
    sampleLimit: z.number().int().optional(),
    podMetricsEndpoints: z
      .array(
        z.strictObject({
          port: z.string(),
          path: z.string().startsWith('/').optional(),
          scheme: z.enum(['http', 'https']).optional(),
          interval: duration.optional(),
          scrapeTimeout: duration.optional(),
          honorLabels: z.boolean().optional(),
          tlsConfig: tlsConfig.optional(),
          relabelings: z.array(relabel).optional(),
          metricRelabelings: z.array(relabel).optional(),
        }),
      )
      .min(1),
  }),
});

const rule = z.union([
  z.strictObject({
    alert: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/),
    expr: z.union([z.string().min(1), z.number()]),
    for: duration.optional(),
    keep_firing_for: duration.optional(),
    labels: labels.optional(),
    annotations: labels.optional(),
  }),
  z.strictObject({
    record: z.string().regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/),
    expr: z.union([z.string().min(1), z.number()]),
    labels: labels.optional(),
  }),
]);

const prometheusRule = z.strictObject({
  apiVersion: z.literal('monitoring.coreos.com/v1'),
  kind: z.literal('PrometheusRule'),
  metadata,
  spec: z.strictObject({
    groups: z
      .array(
        z.strictObject({
          name: z.string().min(1),
          interval: duration.optional(),
          limit: z.number().int().optional(),
          rules: z.array(rule).min(1),
        }),
      )
      .min(1),
  }),
});

const SCHEMAS: Readonly<Record<string, z.ZodType>> = { PodMonitor: podMonitor, PrometheusRule: prometheusRule };

/** Problems of a monitoring.coreos.com/v1 object, or undefined when its kind has no schema here. */
export function validateMonitoringObject(obj: Record<string, unknown>): string[] | undefined {
  const schema = SCHEMAS[String(obj.kind)];
  if (schema === undefined) return undefined;
  const result = schema.safeParse(obj);
  if (result.success) return [];
  return result.error.issues.map((issue) => `${issue.path.join('.') || '.'}: ${issue.message}`);
}
