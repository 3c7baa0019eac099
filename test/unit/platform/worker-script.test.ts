// workerScriptUrl: a worker's script beside the module that starts it once built, and the build's copy in dist/ when
// the module runs from the TypeScript sources (Node 20 cannot run a .ts worker). The signing pool and the policy
// reload's parsing thread both find their script through it.
import { describe, expect, it } from 'vitest';
import { workerScriptUrl } from '../../../src/platform/worker-script.js';

describe('workerScriptUrl', () => {
  it.each([
    [
      'ok/built: the file beside the module',
      'file:///app/dist/src/ca/signing-pool.js',
      'file:///app/dist/src/ca/signing-worker.js',
    ],
    [
      'ok/from the sources: the build’s copy in dist/',
      'file:///work/main/src/authz/parse-policy-off-thread.ts',
      'file:///work/main/dist/src/authz/parse-policy-worker.js',
    ],
    [
      'ok/from the sources under a path that has a src/ of its own: only the project’s src/ moves',
      'file:///home/src/meshauth/src/ca/signing-pool.ts',
      'file:///home/src/meshauth/dist/src/ca/signing-worker.js',
    ],
  ])('%s', (_t, moduleUrl, expected) => {
    const file = moduleUrl.includes('authz') ? './parse-policy-worker.js' : './signing-worker.js';
    expect(workerScriptUrl(file, moduleUrl).href).toBe(expected);
  });
});
