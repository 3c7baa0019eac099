// The CA's keys rotated under a running agent with seconds-long SVIDs, one step after the other as an operator
// would: `ca rotate --intermediate`, then the root (`--root`: old and new root in the bundle; `--root --activate`:
// SVIDs under the new root; `--root --retire`: the new root alone). Through all of it the agent never fails a
// rotation or a bundle refresh and never holds an SVID that is not valid, and its bundle follows each step.
import { afterEach, describe, expect, it } from 'vitest';
import type { Credentials } from '../../src/agent/index.js';
import { activateNextRoot, publishNextRoot, retirePreviousRoot, rotateIntermediate } from '../../src/ca/index.js';
import type { Metrics } from '../../src/telemetry/index.js';
import { waitFor } from '../helpers/wait.js';
import { CaHarness, type Cleanup, rotations, runCleanups, startAgent } from './agent-harness.js';

const cleanups: Cleanup[] = [];
afterEach(() => runCleanups(cleanups));

async function bundleFailures(metrics: Metrics): Promise<number> {
  const { values } = await metrics.bundleRefreshes.get();
  return values.filter((v) => v.labels.result !== 'ok').reduce((sum, v) => sum + v.value, 0);
}

/** The root of the bundle the SVID's intermediate was issued by. */
function rootOf(credentials: Credentials): string | undefined {
  const issuer = credentials.svid.intermediates[0]?.issuer;
  return credentials.bundle.roots.find((root) => root.subject === issuer)?.serialNumber;
}

describe('agent: intermediate and root rotated while it runs', () => {
  it('ok/every step is followed without a failed rotation or a moment without a valid SVID', async () => {
    const ca = await CaHarness.start(4_000, cleanups, { bundleRefreshHintMs: 1_000 });
    const { agent, holder, metrics, logs } = startAgent(ca, await ca.token(), cleanups, { bundleRefreshMs: 500 });
    await agent.whenReady();
    let invalid = 0;
    const sampler = setInterval(() => {
      if (!holder.isValid(new Date())) invalid += 1;
    }, 20);
    cleanups.push(() => clearInterval(sampler));
    const oldRoot = holder.current?.bundle.roots[0]?.serialNumber;

    const intermediate = await rotateIntermediate(ca.dir);
    await waitFor(
      'an SVID under the new intermediate',
      () => holder.current?.svid.intermediates[0]?.serialNumber === intermediate.serial,
      10_000,
    );

    await publishNextRoot(ca.dir);
    await waitFor('old and new root in the bundle', () => holder.current?.bundle.roots.length === 2, 10_000);
    expect(rootOf(holder.current as Credentials)).toBe(oldRoot); // the new root does not sign yet
    await activateNextRoot(ca.dir);
    const newRoot = await waitFor(
      'an SVID under the new root',
      () => {
        const root = rootOf(holder.current as Credentials);
        return root !== oldRoot ? root : undefined;
      },
      10_000,
    );
    expect(holder.current?.bundle.roots).toHaveLength(2);

    await retirePreviousRoot(ca.dir, new Date(), true);
    await waitFor('the new root alone in the bundle', () => holder.current?.bundle.roots.length === 1, 10_000);
    expect(holder.current?.bundle.roots[0]?.serialNumber).toBe(newRoot);
    // One more renewal after the retirement: the agent keeps renewing under the new root.
    const renewed = logs.filter((l) => l.msg === 'SVID renewed').length;
    await waitFor(
      'a renewal after retirement',
      () => logs.filter((l) => l.msg === 'SVID renewed').length > renewed,
      10_000,
    );
    expect(rootOf(holder.current as Credentials)).toBe(newRoot);

    expect(invalid).toBe(0);
    expect(await rotations(metrics, 'failure')).toBe(0);
    expect(await bundleFailures(metrics)).toBe(0);
    expect(logs.filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([]);
  }, 60_000);
});
