// The listeners of an injected sidecar in IPv4-only, IPv6-only and dual-stack pods. Peers and the kubelet's probes
// dial the pod IP, which is IPv6 in an IPv6-only cluster: the injected config used to say 0.0.0.0 (IPv4 alone), so
// nothing answered there. The outbound listener stays on IPv4 loopback, which every pod has.
import { describe, expect, it } from 'vitest';
import { loadSidecarConfig } from '../../../src/config/index.js';
import { injectObject, resolveInjectConfig } from '../../../src/k8s/index.js';
import { bindOptions } from '../../../src/platform/index.js';

const CONFIG = resolveInjectConfig({ trustDomain: 'example.org' });

function injectedConfig() {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'orders', namespace: 'shop' },
    spec: { containers: [{ name: 'orders', image: 'orders:1', ports: [{ containerPort: 8080 }] }] },
  };
  const { object } = injectObject(pod, CONFIG);
  const spec = (object as { spec: { initContainers: { env: { name: string; value?: string }[] }[] } }).spec;
  const env = spec.initContainers[0]?.env ?? [];
  const yaml = env.find((e) => e.name === 'MESHAUTH_CONFIG_YAML')?.value;
  return loadSidecarConfig(undefined, { MESHAUTH_CONFIG_YAML: String(yaml) });
}

describe('injected listeners and address families', () => {
  it('ok/inbound and admin take both families (Node binds :: dual-stack, 0.0.0.0 on a node without IPv6)', () => {
    const config = injectedConfig();
    expect(config.inbound.listen).toEqual({ host: '::', port: 15006 });
    expect(config.admin.listen).toEqual({ host: '::', port: 15020 });
    expect(bindOptions(config.inbound.listen)).toEqual({ port: 15006 });
    expect(bindOptions(config.admin.listen)).toEqual({ port: 15020 });
  });

  it('ok/the outbound listener and the app stay on IPv4 loopback', () => {
    const config = injectedConfig();
    expect(config.outbound.listen).toEqual({ host: '127.0.0.1', port: 15001 });
    expect(config.inbound.app).toMatchObject({ host: '127.0.0.1', port: 8080 });
  });
});
