// The annotations injection writes (meshauth.dev/status, meshauth.dev/original-probes) arrive back as the pod
// creator's input: anyone who may create a pod in an injected namespace can write them, and the webhook undoes an
// earlier injection from them before injecting. Before: the probes annotation's field names were followed as they
// came, so `{"app":{"__proto__":{…}}}` reached Object.prototype through the container and set
// Object.prototype.httpGet in the webhook process, for every later review of every namespace (found by probing the
// webhook). Only the three probe fields, and only a container's own ones, are restored now.
import { afterEach, describe, expect, it } from 'vitest';
import { injectYaml, resolveInjectConfig, uninjectYaml } from '../../../src/k8s/index.js';
import { reviewAdmission } from '../../../src/k8s/inject-admission.js';
import { podCreateReview } from '../../helpers/admission-review.js';
import { applyJsonPatch, type Operation } from '../../helpers/json-patch.js';
import { validateAll } from '../../helpers/k8s-schema.js';

const CONFIG = resolveInjectConfig({ trustDomain: 'example.org' });
type Json = Record<string, unknown>;

function forged(originalProbes: string): Json {
  return {
    metadata: {
      name: 'p',
      annotations: { 'meshauth.dev/status': '{"version":1}', 'meshauth.dev/original-probes': originalProbes },
    },
    spec: {
      containers: [
        {
          name: 'app',
          image: 'app:1',
          securityContext: { runAsNonRoot: true },
          livenessProbe: { exec: { command: ['true'] } },
        },
      ],
    },
  };
}

/** The review as the API server sends it: parsed from JSON text, as the webhook parses its body. */
function patched(pod: Json): Json {
  const out = reviewAdmission(JSON.parse(JSON.stringify(podCreateReview(pod))), CONFIG);
  const response = (out.body as { response: { patch?: string } }).response;
  expect(out.result).toBe('injected');
  const ops = JSON.parse(Buffer.from(response.patch as string, 'base64').toString()) as Operation[];
  return applyJsonPatch(pod, ops) as Json;
}

const inherited = () => (Object.prototype as Json).httpGet;

afterEach(() => {
  // Whatever a failing run left behind must not reach the next test.
  delete (Object.prototype as Json).httpGet;
});

describe('forged injection annotations', () => {
  it('fail/original-probes naming __proto__ → nothing reaches Object.prototype; the pod is injected and valid', () => {
    const pod = patched(forged('{"app":{"__proto__":{"path":"/evil","port":1}}}'));
    expect(inherited()).toBeUndefined();
    expect(validateAll([{ apiVersion: 'v1', kind: 'Pod', ...pod }])).toEqual([]);
    // A later pod whose probe is not httpGet is still left alone.
    const next = patched(forged('{}'));
    const app = (next.spec as { containers: Json[] }).containers[0] as Json;
    expect(app.livenessProbe).toEqual({ exec: { command: ['true'] } });
  });

  it('fail/original-probes naming another field of the container → that field is left as it is', () => {
    const pod = patched(forged('{"app":{"securityContext":{"path":"/x","port":1}}}'));
    const app = (pod.spec as { containers: Json[] }).containers[0] as Json;
    expect(app.securityContext).toEqual({ runAsNonRoot: true });
    expect(validateAll([{ apiVersion: 'v1', kind: 'Pod', ...pod }])).toEqual([]);
  });

  it('fail/the same manifest through inject and uninject → nothing reaches Object.prototype', () => {
    const text = `apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    meshauth.dev/status: '{"version":1}'\n    meshauth.dev/original-probes: '{"app":{"__proto__":{"path":"/evil","port":1}}}'\nspec:\n  containers:\n    - name: app\n      image: app:1\n`;
    injectYaml(text, CONFIG);
    expect(inherited()).toBeUndefined();
    uninjectYaml(text);
    expect(inherited()).toBeUndefined();
  });
});
