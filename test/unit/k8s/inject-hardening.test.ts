// Injection hardening from an outside audit (each case failed before its fix): system namespaces and meshauth's own
// pods are never injected, a pod is never pushed past the API server's annotation limit, a Service with externalIPs
// does not get the mesh port, and a container with its own proxy variables gets none of ours.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { injectObject, resolveInjectConfig, unknownConfigAnnotations } from '../../../src/k8s/index.js';
import { reviewAdmission } from '../../../src/k8s/inject-admission.js';
import { applyJsonPatch, type Operation } from '../../helpers/json-patch.js';

const CONFIG = resolveInjectConfig({ trustDomain: 'example.org' });
type Json = Record<string, unknown>;

function review(object: unknown, namespace: string, kind = 'Pod', operation = 'CREATE'): unknown {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: 'u-1', kind: { group: '', version: 'v1', kind }, operation, namespace, object },
  };
}
function patchedBy(object: unknown, body: unknown): Json {
  const response = (body as { response: { patch?: string } }).response;
  if (response.patch === undefined) return object as Json;
  const ops = JSON.parse(Buffer.from(response.patch, 'base64').toString()) as Operation[];
  return applyJsonPatch(object, ops) as Json;
}
/** apimachinery ValidateAnnotationsSize: sum of len(key)+len(value) must be <= 256 KiB. */
const annotationBytes = (a: Record<string, string>) =>
  Object.entries(a).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
const TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024;

describe('injection hardening', () => {
  it('ok/pods in kube-system, kube-public and kube-node-lease are never injected, whatever the labels', () => {
    const pod = { metadata: { name: 'coredns-x' }, spec: { containers: [{ name: 'coredns', image: 'c:1' }] } };
    for (const namespace of ['kube-system', 'kube-public', 'kube-node-lease']) {
      const outcome = reviewAdmission(review(pod, namespace), CONFIG);
      expect([outcome.result, outcome.reason]).toEqual(['skipped', 'system_namespace']);
    }
    expect(reviewAdmission(review(pod, 'shop'), CONFIG).result).toBe('injected');
  });

  it('ok/the CA and webhook Deployments of deploy/base opt out: a sidecar there would need the CA (or the webhook) to start', () => {
    const ca = parseAllDocuments(readFileSync('deploy/base/ca.yaml', 'utf8'))[0]?.toJS() as Json;
    expect(
      injectObject({ ...ca, metadata: { ...(ca.metadata as Json), namespace: 'meshauth' } }, CONFIG).outcome,
    ).not.toBe('injected');
    const webhook = parseAllDocuments(readFileSync('deploy/base/webhook.yaml', 'utf8'))
      .map((d) => d.toJS() as Json)
      .find((d) => d.kind === 'Deployment') as Json;
    expect(injectObject(webhook, CONFIG).outcome).not.toBe('injected');
  });

  it('ok/a pod whose annotations the sidecar would push past 256 KiB is not injected, with a warning that says why', () => {
    const big = 'x'.repeat(TOTAL_ANNOTATION_SIZE_LIMIT - 200);
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p', annotations: { 'example.com/blob': big } },
      spec: {
        containers: [
          {
            name: 'app',
            image: 'a:1',
            ports: [{ containerPort: 8080 }],
            readinessProbe: { httpGet: { path: '/r', port: 8080 } },
          },
        ],
      },
    };
    expect(annotationBytes(pod.metadata.annotations)).toBeLessThanOrEqual(TOTAL_ANNOTATION_SIZE_LIMIT); // valid as sent
    const outcome = reviewAdmission(review(pod, 'shop'), CONFIG);
    expect([outcome.result, outcome.reason]).toEqual(['error', 'annotations_too_large']);
    const after = patchedBy(pod, outcome.body);
    const size = annotationBytes((after.metadata as Json).annotations as Record<string, string>);
    expect(size).toBeLessThanOrEqual(TOTAL_ANNOTATION_SIZE_LIMIT);
    expect(outcome.warnings.join(' ')).toMatch(/annotations would be \d+ bytes/);
  });

  it('ok/a pod whose own annotations are past 256 KiB is answered before injection reads them', () => {
    // Found in review: megabytes of unknown config.meshauth.dev/ keys were each compared with every setting name
    // before the size check, which took seconds of a webhook that answers reviews one at a time.
    const pod = {
      metadata: { name: 'p', annotations: { [`config.meshauth.dev/${'a'.repeat(300_000)}`]: 'x' } },
      spec: { containers: [{ name: 'app', image: 'a:1' }] },
    };
    const outcome = reviewAdmission(review(pod, 'shop'), CONFIG);
    expect([outcome.result, outcome.reason]).toEqual(['error', 'annotations_too_large']);
    expect(outcome.warnings.join(' ')).toMatch(/the pod's annotations are \d+ bytes/);
  });

  it('ok/only the first unknown config keys get a suggestion (a review reports no more)', () => {
    const annotations: Record<string, string> = {};
    for (let i = 0; i < 8; i++) annotations[`config.meshauth.dev/unknown-${i}`] = 'x';
    annotations['config.meshauth.dev/polcy'] = 'x'; // the ninth: a typo of `policy`, not looked at
    const findings = unknownConfigAnnotations({ annotations });
    expect(findings).toHaveLength(9);
    expect(findings.at(-1)).toEqual({ key: 'config.meshauth.dev/polcy', suggestion: undefined });
    expect(unknownConfigAnnotations({ annotations: { 'config.meshauth.dev/polcy': 'x' } })[0]?.suggestion).toBe(
      'config.meshauth.dev/policy',
    );
  });

  it('ok/a ClusterIP Service with externalIPs does not get the mesh port (it would be open on those addresses)', () => {
    const svc = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'orders', namespace: 'shop' },
      spec: {
        type: 'ClusterIP',
        selector: { app: 'orders' },
        externalIPs: ['203.0.113.10'],
        ports: [{ name: 'http', port: 80 }],
      },
    };
    const after = patchedBy(svc, reviewAdmission(review(svc, 'shop', 'Service'), CONFIG).body);
    const ports = ((after.spec as Json).ports as Json[]).map((p) => p.port);
    // The same exposure the code refuses for NodePort/LoadBalancer (inject-service.ts:38-46).
    expect(ports).not.toContain(15006);
  });

  it('ok/a container that sets its own NO_PROXY keeps it and gets none of our proxy variables', () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p' },
      spec: { containers: [{ name: 'app', image: 'a:1', env: [{ name: 'NO_PROXY', value: '.corp.example' }] }] },
    };
    const after = patchedBy(pod, reviewAdmission(review(pod, 'shop'), CONFIG).body);
    const env = Object.fromEntries(
      ((((after.spec as Json).containers as Json[])[0]?.env ?? []) as { name: string; value: string }[]).map((e) => [
        e.name,
        e.value,
      ]),
    );
    // Before: HTTP_PROXY to the sidecar beside the container's own NO_PROXY, so localhost and 169.254.169.254 went
    // to the sidecar, which refuses them.
    expect(env).toEqual({ NO_PROXY: '.corp.example' });
    expect(reviewAdmission(review(pod, 'shop'), CONFIG).warnings.join(' ')).toMatch(/sets NO_PROXY itself/);
  });
});

describe('the app-port annotation', () => {
  it.each(['15001', '15006', '15020'])(
    'fail/%s, one of the sidecar ports, is refused (it would forward to itself)',
    (port) => {
      const pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'p', annotations: { 'config.meshauth.dev/app-port': port } },
        spec: { containers: [{ name: 'app', image: 'a:1' }] },
      };
      expect(() => injectObject(pod, CONFIG)).toThrow(/not one of the sidecar's/);
    },
  );
});
