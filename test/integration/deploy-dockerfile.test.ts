// The image recipe, read as text (no container engine in CI): distroless Node 24 as the non-root user, every file
// root-owned, no benchmark code, OCI labels, and a build context that cannot carry keys.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { imageNodeFlags } from '../../bench/image-node-flags.js';
import { INJECT_DEFAULTS } from '../../src/k8s/inject-config.js';
import { ROOT } from '../helpers/deploy-tools.js';

interface Instruction {
  readonly op: string;
  readonly args: string;
}

/** Dockerfile instructions with continuation lines joined and comments dropped, split into build stages. */
function stages(text: string): Instruction[][] {
  const joined = text.replace(/\\\n\s*/g, ' ');
  const out: Instruction[][] = [];
  for (const line of joined.split('\n')) {
    const match = /^\s*([A-Z]+)\s+(.*)$/.exec(line);
    if (!match || line.trimStart().startsWith('#')) continue;
    const instruction = { op: match[1] ?? '', args: (match[2] ?? '').trim() };
    if (instruction.op === 'FROM') out.push([]);
    out.at(-1)?.push(instruction);
  }
  return out;
}

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const [build = [], runtime = []] = stages(dockerfile);
const args = (stage: Instruction[], op: string) => stage.filter((i) => i.op === op).map((i) => i.args);

describe('Dockerfile', () => {
  it('ok/builds on Node 24 and runs on distroless Node 24 (nonroot variant), two stages', () => {
    expect(stages(dockerfile)).toHaveLength(2);
    expect(args(build, 'FROM')[0]).toMatch(/^node:24-bookworm-slim AS build$/);
    expect(args(runtime, 'FROM')[0]).toBe('gcr.io/distroless/nodejs24-debian12:nonroot');
  });

  it('ok/runs as 65532:65532, declared after the last COPY; the entrypoint is the CLI of package.json with a capped young generation', () => {
    const users = args(runtime, 'USER');
    expect(users).toEqual(['65532:65532']);
    const lastCopy = runtime.map((i) => i.op).lastIndexOf('COPY');
    expect(runtime.findIndex((i) => i.op === 'USER')).toBeGreaterThan(lastCopy);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(args(runtime, 'ENTRYPOINT')).toEqual([
      `["/nodejs/bin/node", "--max-semi-space-size=8", "${pkg.bin.meshauth}"]`,
    ]);
  });

  it("ok/the fleet bench starts its CA replicas and agents with the entrypoint's Node flags", () => {
    const before = process.env.BENCH_IMAGE_FLAGS;
    try {
      delete process.env.BENCH_IMAGE_FLAGS;
      expect(imageNodeFlags()).toEqual(['--max-semi-space-size=8']);
      process.env.BENCH_IMAGE_FLAGS = '0';
      expect(imageNodeFlags()).toEqual([]);
    } finally {
      if (before === undefined) delete process.env.BENCH_IMAGE_FLAGS;
      else process.env.BENCH_IMAGE_FLAGS = before;
    }
  });

  it('ok/every file in the image is owned by root (the runtime user cannot rewrite its code)', () => {
    const copies = args(runtime, 'COPY');
    expect(copies.length).toBeGreaterThan(0);
    for (const copy of copies) expect(copy).toMatch(/^(--from=build )?--chown=0:0 /);
    expect(args(runtime, 'ADD')).toEqual([]);
    expect(dockerfile).not.toMatch(/chown=65532|chmod .*[2367][0-7]{2}\b/);
  });

  it('ok/no benchmark in the image: bench/ is never copied, and the build proves dist/bench is absent', () => {
    const sources = [...args(build, 'COPY'), ...args(runtime, 'COPY')];
    expect(sources.some((c) => /\bbench\b/.test(c))).toBe(false);
    expect(args(build, 'RUN').join(' ')).toContain('test ! -e dist/bench');
    // Why the guard matters: the build config compiles bench/ whenever it is present.
    const tsconfig = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
    expect(tsconfig.include).toContain('src');
    expect(args(runtime, 'COPY').filter((c) => c.includes('/src/dist'))).toEqual([
      '--from=build --chown=0:0 /src/dist ./dist',
    ]);
  });

  it('ok/dev dependencies are pruned before node_modules is copied', () => {
    const run = args(build, 'RUN').join(' && ');
    expect(run).toMatch(/npm ci .*--ignore-scripts/);
    expect(run.indexOf('npm prune --omit=dev')).toBeGreaterThan(run.indexOf('npm run build'));
  });

  it('ok/OCI labels: title, description, license of package.json, version and revision from build args', () => {
    const labels = args(runtime, 'LABEL').join(' ');
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { license: string };
    for (const key of ['title', 'description', 'version', 'revision', 'created', 'base.name']) {
      expect(labels).toContain(`org.opencontainers.image.${key}=`);
    }
    expect(labels).toContain(`org.opencontainers.image.licenses="${pkg.license}"`);
    // The Dockerfile's build-arg syntax, not a template literal.
    expect(labels).toContain(['org.opencontainers.image.version="$', '{VERSION}"'].join(''));
    expect(args(runtime, 'ARG')).toEqual(expect.arrayContaining(['REVISION=unknown']));
  });

  it("ok/the image's version is package.json's: the VERSION build arg, the injected sidecar's image, the manifests", () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(args(runtime, 'ARG')).toEqual(expect.arrayContaining([`VERSION=${version}`]));
    expect(INJECT_DEFAULTS.image).toBe(`meshauth:${version}`);
    for (const file of ['deploy/base/ca.yaml', 'deploy/base/webhook.yaml', 'deploy/base/inject.yaml']) {
      const images = [...readFileSync(join(ROOT, file), 'utf8').matchAll(/image: (\S+)/g)].map((m) => m[1]);
      expect(images.length, file).toBeGreaterThan(0);
      for (const image of images) expect(image, file).toBe(`meshauth:${version}`);
    }
  });

  it('ok/the build context is an allow-list of exactly what the Dockerfile copies, never keys or certificates', () => {
    const lines = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'));
    expect(lines[0]).toBe('*');
    const allowed = lines.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
    // Every COPY from the context (not --from=build) names a source that is allowed, and nothing else is.
    const sources = [...args(build, 'COPY'), ...args(runtime, 'COPY')]
      .filter((c) => !c.includes('--from='))
      .flatMap((c) =>
        c
          .split(/\s+/)
          .filter((w) => !w.startsWith('--'))
          .slice(0, -1),
      )
      .map((p) => p.replace(/\/$/, ''));
    expect([...new Set(sources)].sort()).toEqual([...allowed].sort());
    // The key and certificate exclusions come after the allow-list (the last matching line wins in .dockerignore).
    const lastAllow = Math.max(...allowed.map((a) => lines.findIndex((l) => l.replace(/\/$/, '') === `!${a}`)));
    for (const entry of ['**/*.key', '**/*.pem', '**/root.key', '**/secrets.yaml']) {
      expect(lines.indexOf(entry)).toBeGreaterThan(lastAllow);
    }
  });
});
