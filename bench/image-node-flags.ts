// The Node flags the image starts every meshauth process with (the Dockerfile's ENTRYPOINT, between the node binary
// and the CLI): benches that stand for what a cluster runs (CA replicas, agents inside sidecars) start their processes
// with them too, so a flag added to the image is measured without a second list to keep in step.
import { existsSync, readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { INJECT_DEFAULTS } from '../src/k8s/inject-config.js';
import { parseQuantity } from '../src/k8s/inject-quantity.js';

// The repository root is one level up from bench/ (sources, as the tests run them) and two from dist/bench/.
const DOCKERFILE = [new URL('../Dockerfile', import.meta.url), new URL('../../Dockerfile', import.meta.url)].find(
  (url) => existsSync(url),
);

/** `--flags` of the image's ENTRYPOINT, e.g. `['--max-semi-space-size=8']`; [] when BENCH_IMAGE_FLAGS=0. */
export function imageNodeFlags(): string[] {
  if (process.env.BENCH_IMAGE_FLAGS === '0') return [];
  if (DOCKERFILE === undefined) throw new Error('no Dockerfile above bench/');
  const entrypoint = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(readFileSync(DOCKERFILE, 'utf8'))?.[1];
  if (entrypoint === undefined) throw new Error('Dockerfile: no ENTRYPOINT ["node", …] line');
  const argv = JSON.parse(entrypoint) as unknown;
  if (!Array.isArray(argv) || !argv.every((a) => typeof a === 'string')) {
    throw new Error('Dockerfile: ENTRYPOINT is not a JSON array of strings');
  }
  const script = argv.findIndex((arg, i) => i > 0 && !arg.startsWith('-'));
  return argv.slice(1, script === -1 ? undefined : script);
}

const MiB = 2 ** 20;

/**
 * The old-space bound V8 gets in a pod with `memoryLimit` (by default the injector's limit for the sidecar): Node
 * sizes the heap from its container's memory limit, at limit / 2 of old space on 64-bit Linux, no less than 256 MiB
 * and no more than V8's 4 GiB, and V8 grows the old generation by its smallest factor under a bound that low. On a
 * machine without a limit the heap is sized for its RAM and a sidecar's old generation grows to 70–100 MiB under
 * load before it is collected, so the bench's sidecars get the bound as a flag to measure what a pod runs. [] when
 * BENCH_IMAGE_FLAGS=0.
 */
export function podHeapFlags(memoryLimit: string = INJECT_DEFAULTS.proxy.memoryLimit): string[] {
  if (process.env.BENCH_IMAGE_FLAGS === '0') return [];
  const bytes = parseQuantity(memoryLimit);
  if (bytes === undefined || bytes <= 0) throw new Error(`not a memory limit: ${memoryLimit}`);
  return [`--max-old-space-size=${Math.min(4096, Math.max(256, Math.floor(bytes / 2 / MiB)))}`];
}

const CA_MANIFEST = new URL('deploy/base/ca.yaml', new URL('.', DOCKERFILE ?? import.meta.url));

/** The memory limit of the CA container in deploy/base (or in `manifest`), for podHeapFlags of the fleet's replicas. */
export function caMemoryLimit(manifest: string = readFileSync(CA_MANIFEST, 'utf8')): string {
  for (const document of parseAllDocuments(manifest)) {
    const resource = document.toJS() as {
      kind?: string;
      spec?: {
        template?: { spec?: { containers?: { name?: string; resources?: { limits?: { memory?: string } } }[] } };
      };
    };
    if (resource?.kind !== 'Deployment') continue;
    const ca = resource.spec?.template?.spec?.containers?.find((container) => container.name === 'ca');
    const limit = ca?.resources?.limits?.memory;
    if (typeof limit === 'string') return limit;
  }
  throw new Error(`${CA_MANIFEST.pathname}: no memory limit on the ca container of its Deployment`);
}

/** podHeapFlags of deploy/base's CA limit, for the fleet bench's replicas; [] when BENCH_IMAGE_FLAGS=0. */
export function caPodHeapFlags(): string[] {
  return process.env.BENCH_IMAGE_FLAGS === '0' ? [] : podHeapFlags(caMemoryLimit());
}
