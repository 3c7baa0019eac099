// Idle RSS: `meshauth sidecar` must not load what only other commands or optional features need. The
// built CLI program is imported in a child process whose module resolve hook lists every package it loads.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULT_K8S_AUDIENCE } from '../../src/ca/kubernetes-token.js';
import { K8S_AUDIENCE } from '../../src/cli/ca.js';
import { ROOT } from '../helpers/meshauth-cli.js';

// Hooks run on their own thread: process.stderr.write there is asynchronous and may be lost when the main thread
// exits first (seen on a loaded machine), so each line is written to fd 2 synchronously.
const HOOKS = `import { writeSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  if (!specifier.startsWith('.') && !specifier.startsWith('node:') && !specifier.startsWith('file:')) {
    writeSync(2, '[package] ' + specifier + '\\n');
  }
  return next(specifier, context);
}`;

/** The bare specifiers resolved while importing `modules` from the build (dist/ is rebuilt by the global setup). */
function packagesLoadedBy(modules: readonly string[]): Set<string> {
  const register = `import { register } from 'node:module'; register(${JSON.stringify(
    `data:text/javascript,${encodeURIComponent(HOOKS)}`,
  )});`;
  const imports = modules.map((m) => `await import(${JSON.stringify(pathToFileURL(join(ROOT, m)).href)});`).join('');
  const child = spawnSync(
    process.execPath,
    ['--import', `data:text/javascript,${encodeURIComponent(register)}`, '--input-type=module', '-e', imports],
    { encoding: 'utf8', timeout: 20_000 },
  );
  expect(child.status, child.stderr).toBe(0);
  return new Set([...child.stderr.matchAll(/^\[package\] (.+)$/gm)].map((m) => m[1] as string));
}

describe('what `meshauth sidecar` loads', () => {
  it('ok/the CLI program loads neither pkijs, jose, oidc-provider, undici nor the demo', () => {
    const loaded = packagesLoadedBy(['dist/src/cli/program.js', 'dist/src/sidecar/index.js']);
    expect(loaded.has('prom-client')).toBe(true); // the hook does see packages
    // undici only once a JWKS or discovery fetch needs it (src/platform/lazy-undici.ts); no HTTP/1.1 hop uses it.
    for (const name of ['pkijs', 'jose', 'oidc-provider', 'undici']) expect(loaded.has(name), name).toBe(false);
  });

  it('ok/the CLI help default for --k8s-audience is the CA default (not imported: it would load jose)', () => {
    expect(K8S_AUDIENCE).toBe(DEFAULT_K8S_AUDIENCE);
  });
});
