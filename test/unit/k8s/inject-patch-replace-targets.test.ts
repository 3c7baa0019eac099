// The webhook's JSON Patch is applied by the API server to the pod as it received it, and a strict applier refuses
// `replace` on a member that is not there. Every `replace` the webhook sends must target a member present in the
// received pod; the whole patch must apply strictly and give the injected pod.
import { describe, expect, it } from 'vitest';
import { injectObject, resolveInjectConfig } from '../../../src/k8s/index.js';
import { reviewAdmission } from '../../../src/k8s/inject-admission.js';
import { podCreateReview } from '../../helpers/admission-review.js';
import { applyJsonPatch, type Operation } from '../../helpers/json-patch.js';

const CONFIG = resolveInjectConfig({ trustDomain: 'example.org' });
type Json = Record<string, unknown>;

function patchOf(pod: unknown): Operation[] {
  const response = (reviewAdmission(podCreateReview(pod), CONFIG).body as { response: { patch?: string } }).response;
  return response.patch === undefined
    ? []
    : (JSON.parse(Buffer.from(response.patch, 'base64').toString()) as Operation[]);
}

/** True when the JSON Pointer names a member (or array item) present in `doc`. */
function exists(doc: unknown, pointer: string): boolean {
  let node = doc;
  for (const raw of pointer.slice(1).split('/')) {
    const token = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (Array.isArray(node)) {
      if (!/^(0|[1-9]\d*)$/.test(token) || Number(token) >= node.length) return false;
      node = node[Number(token)];
    } else if (typeof node === 'object' && node !== null && Object.hasOwn(node, token)) {
      node = (node as Json)[token];
    } else {
      return false;
    }
  }
  return true;
}

const app = (extra: Json = {}): Json => ({
  name: 'app',
  image: 'orders:1',
  ports: [{ name: 'http', containerPort: 3000 }],
  ...extra,
});

/** Pods whose injection edits values already there: probes pointed at the sidecar, a sidecar of an older config. */
function pods(): [string, Json][] {
  const probed = {
    metadata: { name: 'probed', annotations: { 'team.example/owner': 'x' } },
    spec: {
      containers: [
        app({
          livenessProbe: { httpGet: { path: '/healthz', port: 'http' } },
          readinessProbe: { httpGet: { path: '/ready', port: 3000 } },
          startupProbe: { httpGet: { port: '3000' } },
          env: [{ name: 'MODE', value: 'prod' }],
        }),
      ],
      initContainers: [],
    },
  };
  // Injected under another config, then edited: re-injection replaces the old sidecar's values in place.
  const older = injectObject(
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'older' }, spec: { containers: [app()] } },
    resolveInjectConfig({ trustDomain: 'example.org', image: 'meshauth:0.1.0', logLevel: 'debug' }),
  ).object as Json;
  delete older.apiVersion;
  delete older.kind;
  const annotated = {
    metadata: { name: 'annotated', annotations: { 'config.meshauth.dev/log-level': 'warn' } },
    spec: { containers: [app()] },
  };
  return [
    ['probes with named, numeric and string ports', probed],
    ['a pod injected under an older config', older],
    ['a pod with a setting', annotated],
  ];
}

describe('webhook patch: replace only what the received pod has', () => {
  for (const [name, pod] of pods()) {
    it(`ok/${name}: every replace targets a present member; the patch applies strictly`, () => {
      const ops = patchOf(pod);
      expect(ops.length).toBeGreaterThan(0);
      for (const op of ops.filter((o) => o.op === 'replace')) expect(exists(pod, op.path), op.path).toBe(true);
      const expected = injectObject({ apiVersion: 'v1', kind: 'Pod', ...pod }, CONFIG).object as Json;
      delete expected.apiVersion;
      delete expected.kind;
      expect(applyJsonPatch(pod, ops)).toEqual(expected);
    });
  }

  it('ok/the cases do exercise replace (probe ports and paths, the older sidecar)', () => {
    const replaces = pods().flatMap(([, pod]) => patchOf(pod).filter((o) => o.op === 'replace'));
    expect(replaces.length).toBeGreaterThan(0);
  });

  it('fail/the strict applier refuses a replace of a missing member (what the API server would do)', () => {
    expect(() => applyJsonPatch({ a: {} }, [{ op: 'replace', path: '/a/b', value: 1 }])).toThrow();
  });
});
