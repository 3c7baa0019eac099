// A Service that got the mesh port and is later opted out (`meshauth.dev/inject: "false"`), loses its selector or
// becomes ExternalName loses the port and the status annotation on the webhook's UPDATE review. Before, the review
// returned no patch for such a Service: the documented opt-out did nothing, and the port had to be deleted by hand.
import { describe, expect, it } from 'vitest';
import { injectObject, resolveInjectConfig } from '../../../src/k8s/index.js';
import { reviewAdmission } from '../../../src/k8s/inject-admission.js';
import { applyJsonPatch, type Operation } from '../../helpers/json-patch.js';

const CONFIG = resolveInjectConfig({ trustDomain: 'example.org' });
type Json = Record<string, unknown>;

const ORIGINAL: Json = {
  metadata: { name: 'orders', namespace: 'shop', annotations: { 'team.example/owner': 'x' } },
  spec: { selector: { app: 'orders' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
};

/** What the API server stores after the webhook's review of `operation` on `service`. */
function admitted(service: Json, operation: 'CREATE' | 'UPDATE'): Json {
  const outcome = reviewAdmission(
    {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'u-1',
        kind: { group: '', version: 'v1', kind: 'Service' },
        operation,
        namespace: 'shop',
        object: service,
      },
    },
    CONFIG,
  );
  const patch = (outcome.body as { response: { patch?: string } }).response.patch;
  if (patch === undefined) return service;
  return applyJsonPatch(service, JSON.parse(Buffer.from(patch, 'base64').toString()) as Operation[]) as Json;
}

const portNames = (service: Json) => ((service.spec as Json).ports as Json[]).map((p) => p.name);

describe('a retargeted Service changed so that it no longer gets the mesh port', () => {
  const retargeted = admitted(structuredClone(ORIGINAL), 'CREATE');

  it('ok/CREATE in an opted-in namespace adds meshauth-in', () => {
    expect(portNames(retargeted)).toEqual(['http', 'meshauth-in']);
  });

  const changes: [string, (s: Json) => void][] = [
    [
      'annotated meshauth.dev/inject: "false"',
      (s) => (((s.metadata as Json).annotations as Json)['meshauth.dev/inject'] = 'false'),
    ],
    ['its selector removed (manual endpoints)', (s) => delete (s.spec as Json).selector],
    ['its selector emptied', (s) => ((s.spec as Json).selector = {})],
    [
      'turned into ExternalName',
      (s) => Object.assign(s.spec as Json, { type: 'ExternalName', externalName: 'a.example' }),
    ],
  ];
  for (const [name, change] of changes) {
    it(`ok/${name}: the UPDATE removes the mesh port and the status annotation`, () => {
      const updated = structuredClone(retargeted);
      change(updated);
      const expected = structuredClone(ORIGINAL);
      change(expected);
      expect(admitted(updated, 'UPDATE')).toEqual(expected);
    });
  }

  it('ok/the same through injectObject; an opted-out Service never retargeted stays as it is', () => {
    const optedOut = structuredClone(ORIGINAL);
    ((optedOut.metadata as Json).annotations as Json)['meshauth.dev/inject'] = 'false';
    const typed = { apiVersion: 'v1', kind: 'Service', ...optedOut };
    expect(injectObject(typed, CONFIG)).toEqual({ object: typed, outcome: 'unchanged', warnings: [] });
    const retargetedTyped: Json = { apiVersion: 'v1', kind: 'Service', ...structuredClone(retargeted) };
    ((retargetedTyped.metadata as Json).annotations as Json)['meshauth.dev/inject'] = 'false';
    expect(portNames(injectObject(retargetedTyped, CONFIG).object as Json)).toEqual(['http']);
  });
});
