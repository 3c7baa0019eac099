// reviewAdmission (pure): which reviews get a patch, what is admitted unchanged, and the answers to what cannot be
// handled (fail open with a warning by default, refused with failClosed).
import { describe, expect, it } from 'vitest';
import { resolveInjectConfig } from '../../../src/k8s/index.js';
import { reviewAdmission } from '../../../src/k8s/inject-admission.js';
import { parseQuantity } from '../../../src/k8s/inject-quantity.js';
import { applyJsonPatch, type Operation } from '../../helpers/json-patch.js';

const CONFIG = resolveInjectConfig({ trustDomain: 'example.org' });
const POD = { metadata: { name: 'p' }, spec: { containers: [{ name: 'app', image: 'a:1' }] } };

function review(object: unknown, kind = 'Pod', operation = 'CREATE', group = ''): unknown {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: 'u-1', kind: { group, version: 'v1', kind }, operation, namespace: 'shop', object },
  };
}

interface Response {
  uid: string;
  allowed: boolean;
  patch?: string;
  patchType?: string;
  warnings?: string[];
  status?: { code: number; message: string };
}
const responseOf = (body: unknown) => (body as { response: Response }).response;

describe('reviewAdmission', () => {
  it('ok/a pod CREATE gets a JSON Patch that injects it', () => {
    const outcome = reviewAdmission(review(POD), CONFIG);
    expect(outcome).toMatchObject({ httpStatus: 200, result: 'injected', object: 'Pod p' });
    const response = responseOf(outcome.body);
    expect(response).toMatchObject({ uid: 'u-1', allowed: true, patchType: 'JSONPatch' });
    const ops = JSON.parse(Buffer.from(response.patch as string, 'base64').toString()) as Operation[];
    const pod = applyJsonPatch(POD, ops) as { spec: { initContainers: { name: string }[] } };
    expect(pod.spec.initContainers[0]?.name).toBe('meshauth-proxy');
    // Reinvocation (reinvocationPolicy IfNeeded) sees the injected pod: nothing more to do.
    expect(responseOf(reviewAdmission(review(pod), CONFIG).body).patch).toBeUndefined();
  });

  it('ok/dryRun, generateName, no namespace in the object, empty initContainers, annotations and env present: the patch applies strictly', () => {
    const pod = {
      metadata: { generateName: 'orders-7d9f-', labels: { app: 'orders' }, annotations: { 'team.example/owner': 'x' } },
      spec: {
        initContainers: [],
        containers: [{ name: 'app', image: 'a:1', env: [{ name: 'A', value: '1' }], ports: [{ containerPort: 80 }] }],
        volumes: [],
      },
    };
    const body = review(pod) as { request: Record<string, unknown> };
    body.request.dryRun = true; // sideEffects None: a dry run gets the same patch
    delete body.request.namespace;
    const outcome = reviewAdmission(body, CONFIG);
    expect(outcome).toMatchObject({ result: 'injected', object: 'Pod orders-7d9f-' });
    const ops = JSON.parse(Buffer.from(responseOf(outcome.body).patch as string, 'base64').toString()) as Operation[];
    const patched = applyJsonPatch(pod, ops) as {
      metadata: { annotations: Record<string, string> };
      spec: { initContainers: { name: string }[]; containers: { env: { name: string }[] }[] };
    };
    expect(patched.spec.initContainers.map((c) => c.name)).toEqual(['meshauth-proxy']);
    expect(patched.spec.containers[0]?.env.map((e) => e.name)).toEqual([
      'A',
      'HTTP_PROXY',
      'http_proxy',
      'NO_PROXY',
      'no_proxy',
      'NODE_USE_ENV_PROXY',
    ]);
    expect(patched.metadata.annotations['team.example/owner']).toBe('x');
    expect(Object.keys(patched.metadata.annotations)).toContain('meshauth.dev/status');
    // Every add targets an existing parent (RFC 6902 §4.1; the API server refuses the patch otherwise): the
    // strict applier above throws on a missing one. The same for a pod with none of those collections:
    const bare = { metadata: { generateName: 'w-' }, spec: { containers: [{ name: 'w', image: 'w:1' }] } };
    const bareOps = JSON.parse(
      Buffer.from(responseOf(reviewAdmission(review(bare), CONFIG).body).patch as string, 'base64').toString(),
    ) as Operation[];
    expect(() => applyJsonPatch(bare, bareOps)).not.toThrow();
    expect(bareOps.every((op) => op.op === 'add')).toBe(true);
  });

  for (const [name, body] of [
    ['pod UPDATE', review(POD, 'Pod', 'UPDATE')],
    ['pod DELETE', review(POD, 'Pod', 'DELETE')],
    [
      'pod DELETE (the API server sends object null and the old object)',
      {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: 'u-1',
          kind: { group: '', version: 'v1', kind: 'Pod' },
          operation: 'DELETE',
          object: null,
          oldObject: POD,
        },
      },
    ],
    [
      'pod exec (CONNECT on pods/exec)',
      review({ kind: 'PodExecOptions', command: ['sh'] }, 'PodExecOptions', 'CONNECT'),
    ],
    ['Service DELETE', review({ metadata: { name: 's' }, spec: { selector: { a: 'b' } } }, 'Service', 'DELETE')],
    [
      'a Deployment (pods are injected, not their owners)',
      review({ metadata: { name: 'd' } }, 'Deployment', 'CREATE', 'apps'),
    ],
    ['a Service without selector', review({ metadata: { name: 's' }, spec: { ports: [{ port: 1 }] } }, 'Service')],
    ['an opted-out pod', review({ ...POD, metadata: { name: 'p', annotations: { 'meshauth.dev/inject': 'false' } } })],
  ] as const) {
    it(`ok/${name}: admitted without a patch`, () => {
      const outcome = reviewAdmission(body, CONFIG);
      expect(outcome.result).toBe('skipped');
      expect(responseOf(outcome.body)).toEqual({ uid: 'u-1', allowed: true });
    });
  }

  for (const [name, body] of [
    ['not JSON', undefined],
    ['no uid', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: {} }],
    ['v1beta1', { apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'x' } }],
    ['a bare pod', POD],
  ] as const) {
    it(`fail/${name}: 400, counted as error`, () => {
      expect(reviewAdmission(body, CONFIG)).toMatchObject({
        httpStatus: 400,
        result: 'invalid',
        reason: 'not_a_review',
      });
    });
  }

  it('fail/a pod review without an object, or a pod without spec: admitted with a warning', () => {
    for (const body of [review(undefined), review({ metadata: { name: 'p' } })]) {
      const outcome = reviewAdmission(body, CONFIG);
      expect(outcome.result).toBe('error');
      const response = responseOf(outcome.body);
      expect(response.allowed).toBe(true);
      expect(response.patch).toBeUndefined();
      expect(response.warnings?.[0]).toMatch(/^meshauth: sidecar not injected: /);
    }
  });

  it('ok/only "false" opts out; another spelling of it, or the opt-out as a label, is injected with a warning', () => {
    const withMeta = (metadata: Record<string, unknown>) => ({ ...POD, metadata: { name: 'p', ...metadata } });
    const outcome = (metadata: Record<string, unknown>) => {
      const response = responseOf(reviewAdmission(review(withMeta(metadata)), CONFIG).body);
      return { patched: response.patch !== undefined, warnings: response.warnings ?? [] };
    };
    expect(outcome({ annotations: { 'meshauth.dev/inject': 'false' } })).toEqual({ patched: false, warnings: [] });
    for (const value of ['true', 'enabled']) {
      expect(outcome({ annotations: { 'meshauth.dev/inject': value } })).toEqual({ patched: true, warnings: [] });
    }
    for (const value of ['False', 'FALSE', ' false', 'false ', '0', 'no', 'off', 'disabled']) {
      const result = outcome({ annotations: { 'meshauth.dev/inject': value } });
      expect(result.patched, value).toBe(true);
      expect(result.warnings.join('\n'), value).toMatch(
        /meshauth\.dev\/inject: .* is not "false", which alone opts out/,
      );
    }
    const label = outcome({ labels: { 'meshauth.dev/inject': 'false' } });
    expect(label.patched).toBe(true);
    expect(label.warnings.join('\n')).toMatch(/is a label here; the opt-out is the annotation/);
  });

  it('ok/a Windows pod (spec.os or the os nodeSelector) is admitted unchanged with a warning', () => {
    // The API server refuses runAsUser, capabilities and seccomp on a container of a spec.os windows pod: a patch
    // with the Linux sidecar would make the pod impossible to create.
    for (const spec of [{ os: { name: 'windows' } }, { nodeSelector: { 'kubernetes.io/os': 'windows' } }]) {
      const pod = { ...POD, spec: { ...POD.spec, ...spec } };
      const outcome = reviewAdmission(review(pod), CONFIG);
      expect(outcome).toMatchObject({ result: 'skipped', reason: 'windows' });
      const response = responseOf(outcome.body);
      expect(response.patch).toBeUndefined();
      expect(response.warnings?.[0]).toMatch(/Windows pod left without a sidecar/);
    }
  });

  it('fail/failClosed refuses what cannot be handled, with the reason', () => {
    const strict = resolveInjectConfig({ failClosed: true });
    const bad = { ...POD, metadata: { name: 'p', annotations: { 'config.meshauth.dev/app-port': '0' } } };
    const response = responseOf(reviewAdmission(review(bad), strict).body);
    expect(response.allowed).toBe(false);
    expect(response.status).toEqual({ code: 400, message: expect.stringMatching(/app-port: expected a port number/) });
  });

  it('ok/long warnings are shortened for kubectl', () => {
    const pod = {
      metadata: { name: 'x'.repeat(300) },
      spec: { hostNetwork: true, containers: [{ name: 'app', image: 'a:1' }] },
    };
    const warnings = responseOf(reviewAdmission(review(pod), CONFIG).body).warnings ?? [];
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.length).toBe(256);
  });
});

describe('parseQuantity', () => {
  for (const [text, value] of [
    ['100m', 0.1],
    ['1', 1],
    ['1.5', 1.5],
    ['128Mi', 128 * 2 ** 20],
    ['1G', 1e9],
    ['2e3', 2000],
  ] as const) {
    it(`ok/${text}`, () => expect(parseQuantity(text)).toBeCloseTo(value));
  }
  for (const text of ['', '1 Gi', 'Mi', '1GB', '--1']) {
    it(`fail/${JSON.stringify(text)}`, () => expect(parseQuantity(text)).toBeUndefined());
  }
});
