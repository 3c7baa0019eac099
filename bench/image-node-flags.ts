// The Node flags the image starts every meshauth process with (the Dockerfile's ENTRYPOINT, between the node binary
// and the CLI): benches that stand for what a cluster runs (CA replicas, agents inside sidecars) start their processes
// with them too, so a flag added to the image is measured without a second list to keep in step.
import { existsSync, readFileSync } from 'node:fs';

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
