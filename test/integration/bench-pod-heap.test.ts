// The bench's sidecars stand for a pod's: the heap bound the bench passes as a flag (podHeapFlags) must be the one
// Node derives from a container's memory limit. Checked against real memory cgroups (v1 or v2) when the machine lets
// the test make one (root, a writable cgroup tree; CI runs as root); those cases are skipped otherwise.
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { caMemoryLimit, imageNodeFlags, podHeapFlags } from '../../bench/image-node-flags.js';
import { INJECT_DEFAULTS } from '../../src/k8s/inject-config.js';
import { parseQuantity } from '../../src/k8s/inject-quantity.js';
import { parseDocuments, renderKustomization, toolOrSkip } from '../helpers/deploy-tools.js';
import { cgroupsUsable, inCgroup, memoryCgroup, removeMadeCgroups } from '../helpers/memory-cgroup.js';

const HEAP_LIMIT = "process.stdout.write(String(require('node:v8').getHeapStatistics().heap_size_limit))";

/** V8's heap size limit of a Node started with `flags`, inside `cgroup` when given. */
function heapLimit(flags: readonly string[], cgroup?: string): number {
  const args = [...flags, '-e', HEAP_LIMIT];
  const options = { encoding: 'utf8' as const, timeout: 20_000 };
  const out =
    cgroup === undefined
      ? execFileSync(process.execPath, args, options)
      : execFileSync('/bin/sh', inCgroup(cgroup, process.execPath, args), options);
  return Number(out);
}

const noCgroups = !cgroupsUsable();

afterEach(removeMadeCgroups);

describe('bench: the heap bound of a pod', () => {
  it('ok/the bound follows the limit: limit / 2 of old space within 256 MiB..4 GiB; none without the image flags', () => {
    const before = process.env.BENCH_IMAGE_FLAGS;
    try {
      delete process.env.BENCH_IMAGE_FLAGS;
      expect(podHeapFlags('256Mi')).toEqual(['--max-old-space-size=256']);
      expect(podHeapFlags('128Mi')).toEqual(['--max-old-space-size=256']);
      expect(podHeapFlags('1Gi')).toEqual(['--max-old-space-size=512']);
      expect(podHeapFlags('16Gi')).toEqual(['--max-old-space-size=4096']);
      expect(podHeapFlags()).toEqual(podHeapFlags(INJECT_DEFAULTS.proxy.memoryLimit));
      expect(() => podHeapFlags('lots')).toThrow(/not a memory limit: lots/);
      process.env.BENCH_IMAGE_FLAGS = '0';
      expect(podHeapFlags()).toEqual([]);
    } finally {
      if (before === undefined) delete process.env.BENCH_IMAGE_FLAGS;
      else process.env.BENCH_IMAGE_FLAGS = before;
    }
  });

  it.skipIf(noCgroups)(
    "ok/the bench's flags give the heap Node gives a sidecar under the injector's memory limit",
    () => {
      const limit = parseQuantity(INJECT_DEFAULTS.proxy.memoryLimit) as number;
      const inPod = heapLimit(imageNodeFlags(), memoryCgroup(limit));
      expect(heapLimit([...imageNodeFlags(), ...podHeapFlags()])).toBe(inPod);
      // Without the bound the heap is sized for the machine: the case would be vacuous if the two were the same.
      expect(heapLimit(imageNodeFlags())).toBeGreaterThan(inPod);
    },
  );

  it.runIf(toolOrSkip('kubectl', ['version', '--client']))(
    "ok/the fleet bench's CA replicas take the memory limit of the CA that kubectl kustomize deploy/base renders",
    () => {
      const rendered = parseDocuments(renderKustomization('deploy/base'), 'deploy/base');
      const deployment = rendered.find(
        (d) => d.kind === 'Deployment' && (d.metadata as { name?: string }).name === 'meshauth-ca',
      ) as {
        spec: { template: { spec: { containers: { name: string; resources: { limits: { memory: string } } }[] } } };
      };
      const ca = deployment.spec.template.spec.containers.find((container) => container.name === 'ca');
      expect(caMemoryLimit()).toBe(ca?.resources.limits.memory);
    },
  );

  it('fail/a CA manifest without a memory limit on its ca container is refused, naming the file', () => {
    const noLimit = [
      'kind: Service',
      '---',
      'kind: Deployment',
      'spec: { template: { spec: { containers: [{ name: ca, resources: { requests: { memory: 128Mi } } }] } } }',
    ].join('\n');
    expect(() => caMemoryLimit(noLimit)).toThrow(/deploy\/base\/ca\.yaml: no memory limit on the ca container/);
  });

  it.skipIf(noCgroups)("ok/the floor, half the limit above it, and V8's cap, each as in a cgroup of that size", () => {
    for (const limit of ['128Mi', '1Gi', '16Gi']) {
      const inPod = heapLimit(imageNodeFlags(), memoryCgroup(parseQuantity(limit) as number));
      expect(heapLimit([...imageNodeFlags(), ...podHeapFlags(limit)]), limit).toBe(inPod);
    }
  });
});
