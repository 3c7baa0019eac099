// The injected sidecar's heap bound under a memory limit below 256 MiB. Node sizes its old space at half the
// container's limit but never below 256 MiB, so before, a sidecar given `proxy.memoryLimit: 128Mi` could grow its heap
// past the limit and be killed by the kernel instead of collecting. Now injection sets NODE_OPTIONS
// --max-old-space-size to half such a limit; at 256 MiB and above (the default) it sets nothing.
import { describe, expect, it } from 'vitest';
import { injectObject, resolveInjectConfig } from '../../../src/k8s/index.js';

type Json = Record<string, unknown>;

function sidecarOf(memoryLimit: string | undefined, annotations: Json = {}): Json {
  const config = resolveInjectConfig({
    trustDomain: 'example.org',
    ...(memoryLimit === undefined ? {} : { proxy: { memoryLimit } }),
  });
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', annotations },
    spec: { containers: [{ name: 'app' }] },
  };
  const out = injectObject(pod, config).object as Json;
  return ((out.spec as Json).initContainers as Json[])[0] as Json;
}

const nodeOptions = (sidecar: Json) => (sidecar.env as Json[]).filter((e) => e.name === 'NODE_OPTIONS');
const limitOf = (sidecar: Json) => ((sidecar.resources as Json).limits as Json).memory;

describe('the sidecar heap bound follows a small memory limit', () => {
  for (const [limit, mib] of [
    ['128Mi', 64],
    ['192Mi', 96],
    ['200M', 95],
    ['255Mi', 127],
  ] as const) {
    it(`ok/limit ${limit}: NODE_OPTIONS --max-old-space-size=${mib}`, () => {
      const sidecar = sidecarOf(limit);
      expect(limitOf(sidecar)).toBe(limit);
      expect(nodeOptions(sidecar)).toEqual([{ name: 'NODE_OPTIONS', value: `--max-old-space-size=${mib}` }]);
    });
  }

  for (const limit of [undefined, '256Mi', '512Mi', '1Gi']) {
    it(`ok/limit ${limit ?? 'default (256Mi)'}: no NODE_OPTIONS (Node's own bound fits)`, () => {
      expect(nodeOptions(sidecarOf(limit))).toEqual([]);
    });
  }

  it('ok/a memory request above the limit raises the limit, and the bound follows the raised limit', () => {
    const sidecar = sidecarOf('128Mi', { 'config.meshauth.dev/proxy-memory': '160Mi' });
    expect(limitOf(sidecar)).toBe('160Mi');
    expect(nodeOptions(sidecar)).toEqual([{ name: 'NODE_OPTIONS', value: '--max-old-space-size=80' }]);
    expect(nodeOptions(sidecarOf('128Mi', { 'config.meshauth.dev/proxy-memory': '300Mi' }))).toEqual([]);
  });
});
