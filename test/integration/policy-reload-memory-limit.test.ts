// A policy reload parses on a thread of its own (parse-policy-off-thread.ts), and V8's heap bound is per thread: a
// thread without a bound of its own gets the main thread's, which Node sizes from the container's memory limit
// without counting the other thread. Review finding: in a 256 MiB memory cgroup (the injector's default limit), with
// the image's Node flags, a valid 1 MiB policy whose parse needs ~200 MiB of heap made the kernel kill the whole
// process (exit 137): every sidecar watching that ConfigMap at once. The thread now gets what the limit leaves; such a
// parse is refused (the old policy stays) and the process lives. Needs real memory cgroups (root, CI); skipped where
// none can be made.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { imageNodeFlags } from '../../bench/image-node-flags.js';
import { cgroupsUsable, inCgroup, memoryCgroup, removeMadeCgroups } from '../helpers/memory-cgroup.js';
import { heapHungryPolicy, largeRealPolicy } from '../helpers/policy-reloads.js';
import { runCommand } from '../helpers/sidecar-harness.js';

const POD_LIMIT = 256 * 2 ** 20;
const PARSER = fileURLToPath(new URL('../../dist/src/authz/parse-policy-off-thread.js', import.meta.url));

const dir = mkdtempSync(join(tmpdir(), 'meshauth-policy-memory-'));
const CHILD = join(dir, 'reload.mjs');
writeFileSync(
  CHILD,
  [
    `import { readFileSync } from 'node:fs';`,
    `import { parsePolicyOffThread } from ${JSON.stringify(PARSER)};`,
    `const file = process.argv[2];`,
    `try {`,
    `  await parsePolicyOffThread(readFileSync(file, 'utf8'), file, 'example.org');`,
    `  console.log(JSON.stringify({ outcome: 'parsed' }));`,
    `} catch (error) {`,
    `  console.log(JSON.stringify({ outcome: 'refused', code: error.code, reason: error.reason, message: error.message }));`,
    `}`,
  ].join('\n'),
);

const noCgroups = !cgroupsUsable();

/**
 * A reload of `text` by a Node process with the image's Node flags inside a new 256 MiB memory cgroup: its exit code
 * and what it printed.
 */
async function reloadInPod(
  name: string,
  text: string,
): Promise<{ code: number | null; said: Record<string, unknown> }> {
  const file = join(dir, name);
  writeFileSync(file, text);
  const cgroup = memoryCgroup(POD_LIMIT) as string;
  const result = await runCommand('/bin/sh', inCgroup(cgroup, process.execPath, [...imageNodeFlags(), CHILD, file]), {
    timeoutMs: 60_000,
  });
  const line = result.stdout.trim().split('\n').at(-1) ?? '';
  return { code: result.code, said: line.startsWith('{') ? (JSON.parse(line) as Record<string, unknown>) : {} };
}

afterEach(removeMadeCgroups);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(noCgroups)('policy reload under a 256 MiB memory limit', () => {
  it('fail/a 1 MiB policy that needs more heap than the limit leaves: refused, the process lives', {
    timeout: 90_000,
  }, async () => {
    const { code, said } = await reloadInPod('hungry.yaml', heapHungryPolicy());
    expect({ code, outcome: said.outcome, code_: said.code, reason: said.reason }).toEqual({
      code: 0,
      outcome: 'refused',
      code_: 'MESHAUTH_ERR_POLICY_INVALID',
      reason: 'parse_thread_failed',
    });
    expect(said.message).toMatch(/ran out of memory \(its \d+ MiB heap, what the memory limit left\)/);
  });

  it('ok/a large real policy (1 MiB of ten-line rules) still reloads', { timeout: 90_000 }, async () => {
    const { code, said } = await reloadInPod('large.yaml', largeRealPolicy().text);
    expect({ code, said }).toEqual({ code: 0, said: { outcome: 'parsed' } });
  });
});
