// Proxy variables a container takes from envFrom (a ConfigMap or Secret) are out of injection's sight, and the
// variables it adds to env win over them. Before, such a container was given HTTP_PROXY, NO_PROXY and the rest with
// no word, so its own proxy and NO_PROXY list were replaced silently; now the injection warns, naming the container.
import { describe, expect, it } from 'vitest';
import { injectObject, resolveInjectConfig, uninjectObject } from '../../../src/k8s/index.js';

const CONFIG = resolveInjectConfig({ trustDomain: 'example.org' });
type Json = Record<string, unknown>;

function pod(containers: Json[], initContainers?: Json[]): Json {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p' },
    spec: { ...(initContainers ? { initContainers } : {}), containers },
  };
}

const envNames = (object: unknown, list: 'containers' | 'initContainers', index: number) =>
  ((((object as Json).spec as Json)[list] as Json[])[index]?.env as Json[] | undefined)?.map((e) => e.name);
const ADDED = ['HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy', 'NODE_USE_ENV_PROXY'];
const warning = (name: string) =>
  `Pod p: container ${name} has envFrom; the proxy variables added (${ADDED.join(', ')}) replace any of the same name it sets (env wins over envFrom): to keep its own proxy, set HTTP_PROXY or NO_PROXY in env`;

describe('proxy variables and envFrom', () => {
  it('fail/a container with envFrom gets the proxy variables and a warning naming it; uninject removes them', () => {
    const original = pod([
      { name: 'app', image: 'a:1', envFrom: [{ configMapRef: { name: 'corp-proxy' } }] },
      { name: 'plain', image: 'b:1' },
    ]);
    const result = injectObject(original, CONFIG);
    expect(envNames(result.object, 'containers', 0)).toEqual(ADDED);
    expect(envNames(result.object, 'containers', 1)).toEqual(ADDED);
    expect(result.warnings).toEqual([warning('app')]);
    expect(uninjectObject(result.object).object).toEqual(original);
  });

  it("fail/the app's own init container with envFrom is warned about too", () => {
    const result = injectObject(
      pod(
        [{ name: 'app', image: 'a:1' }],
        [{ name: 'migrate', image: 'm:1', envFrom: [{ secretRef: { name: 's' } }] }],
      ),
      CONFIG,
    );
    expect(result.warnings).toEqual([warning('migrate')]);
  });

  it('ok/a container that sets HTTP_PROXY in env as well as envFrom keeps its own: one warning, the existing one', () => {
    const result = injectObject(
      pod([
        {
          name: 'app',
          image: 'a:1',
          env: [{ name: 'HTTP_PROXY', value: 'http://corp:3128' }],
          envFrom: [{ configMapRef: { name: 'corp-proxy' } }],
        },
      ]),
      CONFIG,
    );
    expect(envNames(result.object, 'containers', 0)).toEqual(['HTTP_PROXY']);
    expect(result.warnings).toEqual([
      'Pod p: container app sets HTTP_PROXY itself; no proxy variables added (its plain-HTTP calls do not go through the sidecar)',
    ]);
  });

  it('ok/an empty envFrom list is no envFrom: no warning', () => {
    expect(injectObject(pod([{ name: 'app', image: 'a:1', envFrom: [] }]), CONFIG).warnings).toEqual([]);
  });
});
