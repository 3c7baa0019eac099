// Where a worker thread's script is. Built, it is the .js file next to the module that starts it; under the
// TypeScript sources (the tests run src/*.ts), Node 20 cannot run a .ts worker, so it is the build's copy in dist/.
// Pure: a URL is computed, nothing is read.

/** `file` (e.g. `./signing-worker.js`) beside the module at `moduleUrl` (its import.meta.url), or its dist/ copy. */
export function workerScriptUrl(file: string, moduleUrl: string): URL {
  const here = new URL(file, moduleUrl);
  if (!moduleUrl.endsWith('.ts')) return here;
  const at = here.href.lastIndexOf('/src/');
  return new URL(`${here.href.slice(0, at)}/dist${here.href.slice(at)}`);
}
