// What the deploy/ tests need around the manifests: finding every kustomization, rendering one with the real
// `kubectl kustomize`, parsing multi-document YAML, and deciding what to do when kubectl or promtool is missing
// (fail in CI, which installs both; skip with a message on a developer machine).
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

export const ROOT = new URL('../..', import.meta.url).pathname;
export const DEPLOY = join(ROOT, 'deploy');

const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];

export interface KustomizationDir {
  /** Relative to the repository root, e.g. `deploy/overlays/example`. */
  readonly dir: string;
  /** `Kustomization` or `Component` (a Component is only rendered through a kustomization that uses it). */
  readonly kind: string;
  readonly content: Record<string, unknown>;
}

/** Every folder under deploy/ that holds a kustomization file, sorted. */
export function findKustomizations(root = DEPLOY): KustomizationDir[] {
  const found: KustomizationDir[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (KUSTOMIZATION_FILES.includes(name)) {
        const content = (parse(readFileSync(path, 'utf8')) ?? {}) as Record<string, unknown>;
        found.push({ dir: relative(ROOT, dir), kind: String(content.kind ?? 'Kustomization'), content });
      }
    }
  };
  walk(root);
  return found;
}

/**
 * `kubectl kustomize DIR` (relative to the repository root, or absolute) with kustomize's default load restrictor:
 * a kustomization may not read a file outside its folder tree.
 */
export function renderKustomization(dir: string): string {
  return execFileSync('kubectl', ['kustomize', '--load-restrictor', 'LoadRestrictionsRootOnly', resolve(ROOT, dir)], {
    encoding: 'utf8',
    timeout: 60_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Parses a multi-document YAML stream; throws naming the document index on a syntax error. */
export function parseDocuments(text: string, source: string): Record<string, unknown>[] {
  return parseAllDocuments(text).flatMap((doc, index) => {
    if (doc.errors.length > 0) throw new Error(`${source}: document ${index}: ${doc.errors[0]?.message ?? ''}`);
    const value = doc.toJS() as unknown;
    return value === null || value === undefined ? [] : [value as Record<string, unknown>];
  });
}

export function hasTool(name: string, versionArgs: readonly string[]): boolean {
  const result = spawnSync(name, versionArgs, { stdio: 'ignore', timeout: 30_000 });
  return result.status === 0;
}

/**
 * Whether tests needing `name` should run. Missing in CI: throws (CI installs kubectl and promtool, so a missing
 * tool is a broken pipeline, not a reason to skip). Missing elsewhere: warns once and returns false.
 */
export function toolOrSkip(name: string, versionArgs: readonly string[], ci = process.env.CI): boolean {
  if (hasTool(name, versionArgs)) return true;
  if (ci !== undefined && ci !== '' && ci !== 'false') {
    throw new Error(
      `${name} is required in CI (Debian: apt-get install ${name === 'kubectl' ? 'kubernetes-client' : 'prometheus'})`,
    );
  }
  console.warn(`SKIPPED: ${name} is not installed; the deploy/ tests that need it do not run here (CI runs them)`);
  return false;
}
