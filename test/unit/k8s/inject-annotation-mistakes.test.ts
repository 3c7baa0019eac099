// config.meshauth.dev/* annotations that would change nothing: a setting on a workload's own metadata (injection
// reads only the pod template's) and a key that is no setting. `meshauth inject` refuses both; the webhook, which
// only sees pods, admits the pod with a warning in the AdmissionReview response.
import { describe, expect, it } from 'vitest';
import { isMeshauthError } from '../../../src/errors/index.js';
import { injectObject, injectObjects, injectYaml, resolveInjectConfig } from '../../../src/k8s/index.js';
import { reviewAdmission } from '../../../src/k8s/inject-admission.js';
import { podCreateReview } from '../../helpers/admission-review.js';

const CONFIG = resolveInjectConfig({ trustDomain: 'example.org' });
type Json = Record<string, unknown>;

function workload(kind: string, options: { own?: Json; template?: Json; jobTemplate?: Json } = {}): Json {
  const template = {
    metadata: { labels: { app: 'orders' }, ...(options.template ? { annotations: options.template } : {}) },
    spec: { containers: [{ name: 'app', image: 'orders:1', ports: [{ containerPort: 3000 }] }] },
  };
  const metadata = { name: 'orders', namespace: 'shop', ...(options.own ? { annotations: options.own } : {}) };
  if (kind === 'Pod')
    return { apiVersion: 'v1', kind, metadata: { ...template.metadata, ...metadata }, spec: template.spec };
  if (kind === 'CronJob') {
    return {
      apiVersion: 'batch/v1',
      kind,
      metadata,
      spec: {
        schedule: '* * * * *',
        jobTemplate: {
          ...(options.jobTemplate ? { metadata: { annotations: options.jobTemplate } } : {}),
          spec: { template },
        },
      },
    };
  }
  const apiVersion = kind === 'Job' ? 'batch/v1' : 'apps/v1';
  return { apiVersion, kind, metadata, spec: { selector: { matchLabels: { app: 'orders' } }, template } };
}

function refusal(run: () => unknown): { code: string; message: string } {
  try {
    run();
  } catch (error) {
    if (isMeshauthError(error)) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error('expected a refusal');
}

const POLICY = 'config.meshauth.dev/policy';

describe('meshauth inject: a setting on the workload object itself', () => {
  it.each(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job'])(
    'fail/%s with config.meshauth.dev/policy on its own metadata only: refused, naming object, key and the fix',
    (kind) => {
      const { code, message } = refusal(() =>
        injectObject(workload(kind, { own: { [POLICY]: 'orders-policy' } }), CONFIG),
      );
      expect(code).toBe('MESHAUTH_ERR_MANIFEST_ANNOTATION_MISPLACED');
      expect(message).toContain(`${kind} shop/orders`);
      expect(message).toContain(POLICY);
      expect(message).toContain('put it on spec.template.metadata.annotations');
    },
  );

  it('fail/every setting is checked (app-port, end-user, log-level), not only the policy', () => {
    for (const key of [
      'config.meshauth.dev/app-port',
      'config.meshauth.dev/end-user',
      'config.meshauth.dev/log-level',
    ]) {
      const { code, message } = refusal(() => injectObject(workload('Deployment', { own: { [key]: 'x' } }), CONFIG));
      expect(code).toBe('MESHAUTH_ERR_MANIFEST_ANNOTATION_MISPLACED');
      expect(message).toContain(key);
    }
  });

  it('fail/a different value on the object than on the template: refused (the sidecar would get the template one)', () => {
    const object = workload('Deployment', { own: { [POLICY]: 'strict' }, template: { [POLICY]: 'loose' } });
    const { code, message } = refusal(() => injectObject(object, CONFIG));
    expect(code).toBe('MESHAUTH_ERR_MANIFEST_ANNOTATION_MISPLACED');
    expect(message).toContain('"loose"');
  });

  it("fail/CronJob: on its own metadata or on spec.jobTemplate.metadata; the fix names the CronJob's template path", () => {
    for (const options of [{ own: { [POLICY]: 'p' } }, { jobTemplate: { [POLICY]: 'p' } }]) {
      const { code, message } = refusal(() => injectObject(workload('CronJob', options), CONFIG));
      expect(code).toBe('MESHAUTH_ERR_MANIFEST_ANNOTATION_MISPLACED');
      expect(message).toContain('put it on spec.jobTemplate.spec.template.metadata.annotations');
    }
  });

  it('fail/through injectYaml (the CLI path), also inside a List', () => {
    const yaml = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: orders
  namespace: shop
  annotations:
    ${POLICY}: orders-policy
spec:
  selector: { matchLabels: { app: orders } }
  template:
    metadata: { labels: { app: orders } }
    spec: { containers: [{ name: app, image: "orders:1" }] }
`;
    expect(refusal(() => injectYaml(yaml, CONFIG)).code).toBe('MESHAUTH_ERR_MANIFEST_ANNOTATION_MISPLACED');
    const list = { apiVersion: 'v1', kind: 'List', items: [workload('Deployment', { own: { [POLICY]: 'p' } })] };
    expect(refusal(() => injectObjects([list], CONFIG)).code).toBe('MESHAUTH_ERR_MANIFEST_ANNOTATION_MISPLACED');
  });

  it('ok/the same setting on the object and the template, or only on the template: injected with it', () => {
    for (const options of [{ own: { [POLICY]: 'p' }, template: { [POLICY]: 'p' } }, { template: { [POLICY]: 'p' } }]) {
      const result = injectObject(workload('Deployment', options), CONFIG);
      expect(result.outcome).toBe('injected');
      expect(JSON.stringify(result.object)).toContain('"name":"p"');
    }
  });

  it('ok/other annotations on the object, and an object left alone (opted out, hostNetwork), pass as before', () => {
    const other = workload('Deployment', { own: { 'meshauth.dev/owner': 'x', 'team.example/policy': 'y' } });
    expect(injectObject(other, CONFIG).outcome).toBe('injected');
    const optedOut = workload('Deployment', { own: { 'meshauth.dev/inject': 'false', [POLICY]: 'p' } });
    expect(injectObject(optedOut, CONFIG).outcome).toBe('opted-out');
    const host = workload('Deployment', { own: { [POLICY]: 'p' } });
    ((host.spec as Json).template as { spec: Json }).spec.hostNetwork = true;
    expect(injectObject(host, CONFIG).outcome).toBe('host-network');
  });
});

describe('meshauth inject: an unknown config.meshauth.dev key', () => {
  it('fail/a misspelt key on the pod template: refused with the closest setting', () => {
    const object = workload('Deployment', { template: { 'config.meshauth.dev/appport': '8080' } });
    const { code, message } = refusal(() => injectObject(object, CONFIG));
    expect(code).toBe('MESHAUTH_ERR_MANIFEST_ANNOTATION_UNKNOWN');
    expect(message).toContain('Deployment shop/orders');
    expect(message).toContain('config.meshauth.dev/appport');
    expect(message).toContain('did you mean config.meshauth.dev/app-port?');
  });

  it('fail/on a Pod (its own metadata is its template); a key close to nothing gets no suggestion', () => {
    const { code, message } = refusal(() =>
      injectObject(workload('Pod', { own: { 'config.meshauth.dev/colour': 'blue' } }), CONFIG),
    );
    expect(code).toBe('MESHAUTH_ERR_MANIFEST_ANNOTATION_UNKNOWN');
    expect(message).not.toContain('did you mean');
    expect(message).toContain('the settings are config.meshauth.dev/app-port');
  });

  it('ok/every documented setting is known', () => {
    const template = {
      'config.meshauth.dev/app-port': '8080',
      [POLICY]: 'p',
      'config.meshauth.dev/end-user': 'e',
      'config.meshauth.dev/proxy-cpu': '100m',
      'config.meshauth.dev/proxy-memory': '192Mi',
      'config.meshauth.dev/log-level': 'debug',
    };
    expect(injectObject(workload('Deployment', { template }), CONFIG).warnings).toEqual([]);
  });
});

describe('webhook: an unknown config.meshauth.dev key on a pod', () => {
  it('ok/admitted and injected, with a warning kubectl prints and the key for the log line', () => {
    const pod = workload('Pod', { own: { 'config.meshauth.dev/appport': '8080' } });
    delete pod.apiVersion;
    delete pod.kind;
    const outcome = reviewAdmission(podCreateReview(pod), { ...CONFIG, failClosed: true });
    expect(outcome.result).toBe('injected');
    const response = (outcome.body as { response: { allowed: boolean; patch?: string; warnings?: string[] } }).response;
    expect(response.allowed).toBe(true);
    expect(response.patch).toBeDefined();
    expect(response.warnings?.[0]).toContain('config.meshauth.dev/appport');
    expect(response.warnings?.[0]).toContain('did you mean config.meshauth.dev/app-port?');
    expect(response.warnings?.[0]).toContain('ignored');
    expect(outcome.unknownAnnotations).toEqual(['config.meshauth.dev/appport']);
  });

  it('ok/a pod with known settings only: no warning, nothing for the log line', () => {
    const pod = workload('Pod', { own: { [POLICY]: 'p' } });
    const outcome = reviewAdmission(podCreateReview(pod), CONFIG);
    expect(outcome.result).toBe('injected');
    expect((outcome.body as { response: { warnings?: string[] } }).response.warnings).toBeUndefined();
    expect(outcome.unknownAnnotations).toEqual([]);
  });
});

describe('injectObject with warn: the unknown keys as data beside their warnings', () => {
  it('ok/the keys the warnings name come back once, with their suggestion, for the webhook to log and count', () => {
    const own = { 'config.meshauth.dev/appport': '8080', 'config.meshauth.dev/nonsense': 'x', [POLICY]: 'p' };
    const result = injectObject(workload('Pod', { own }), CONFIG, { annotationMistakes: 'warn' });
    expect(result.outcome).toBe('injected');
    expect(result.unknownAnnotations).toEqual([
      { key: 'config.meshauth.dev/appport', suggestion: 'config.meshauth.dev/app-port' },
      { key: 'config.meshauth.dev/nonsense', suggestion: undefined },
    ]);
    expect(result.warnings.filter((w) => w.includes('is not a meshauth setting'))).toHaveLength(2);
  });

  it('ok/a workload left alone is not checked: nothing to report', () => {
    const pod = workload('Pod', { own: { 'config.meshauth.dev/appport': '8080', 'meshauth.dev/inject': 'false' } });
    const result = injectObject(pod, CONFIG, { annotationMistakes: 'warn' });
    expect(result.outcome).toBe('opted-out');
    expect(result.unknownAnnotations ?? []).toEqual([]);
  });
});
