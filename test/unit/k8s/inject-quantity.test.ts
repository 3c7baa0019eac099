// Kubernetes quantities with the nano and micro suffixes (`250000000n`, `250000u`), which Kubernetes accepts and some
// tools print for CPU. Before, they were refused: a proxy-cpu annotation such as 250000000n made the webhook admit
// the pod without its sidecar (inject_failed), `meshauth inject` exit 2, and inject.yaml would not load.
import { describe, expect, it } from 'vitest';
import { parseInjectConfig, resolveInjectConfig } from '../../../src/k8s/index.js';
import { reviewAdmission } from '../../../src/k8s/inject-admission.js';
import { checkQuantity, parseQuantity } from '../../../src/k8s/inject-quantity.js';
import { applyJsonPatch, type Operation } from '../../helpers/json-patch.js';

const CONFIG = resolveInjectConfig({ trustDomain: 'example.org' });
type Json = Record<string, unknown>;

/** The injected sidecar's resources for a pod whose proxy-cpu annotation is `cpu`. */
function sidecarResources(cpu: string): { result: string; resources: Json | undefined } {
  const pod = {
    metadata: { name: 'p', annotations: { 'config.meshauth.dev/proxy-cpu': cpu } },
    spec: { containers: [{ name: 'app', image: 'a:1' }] },
  };
  const outcome = reviewAdmission(
    {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: { uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', object: pod },
    },
    CONFIG,
  );
  const patch = (outcome.body as { response: { patch?: string } }).response.patch;
  if (patch === undefined) return { result: outcome.result, resources: undefined };
  const after = applyJsonPatch(pod, JSON.parse(Buffer.from(patch, 'base64').toString()) as Operation[]) as {
    spec: { initContainers: { resources: Json }[] };
  };
  return { result: outcome.result, resources: after.spec.initContainers[0]?.resources };
}

describe('quantities with the n and u suffixes', () => {
  for (const [text, value] of [
    ['250000000n', 0.25],
    ['250000u', 0.25],
    ['1n', 1e-9],
    ['0.5u', 5e-7],
  ] as const) {
    it(`ok/${text} is ${value}`, () => {
      expect(checkQuantity(text).ok).toBe(true);
      expect(parseQuantity(text)).toBeCloseTo(value, 12);
    });
  }
  for (const text of ['1N', '1U', '1nn', '1un', 'n', '1µ']) {
    it(`fail/${text} is not a quantity`, () => expect(parseQuantity(text)).toBeUndefined());
  }

  it('ok/a proxy-cpu annotation of 250000000n or 250000u injects the sidecar with that request', () => {
    for (const cpu of ['250000000n', '250000u']) {
      expect(sidecarResources(cpu)).toEqual({
        result: 'injected',
        resources: { requests: { cpu, memory: '128Mi' }, limits: { cpu: '1', memory: '256Mi' } },
      });
    }
  });

  it('ok/a request in nanocores above the limit raises the limit to it', () => {
    expect(sidecarResources('2000000000n').resources?.limits).toEqual({ cpu: '2000000000n', memory: '256Mi' });
  });

  it('ok/inject.yaml proxy quantities with n or u load', () => {
    const config = parseInjectConfig(
      'trustDomain: example.org\nproxy:\n  cpu: 50000000n\n  cpuLimit: 1000000u\n',
      'inject.yaml',
    );
    expect(config.proxy).toMatchObject({ cpu: '50000000n', cpuLimit: '1000000u' });
  });
});
