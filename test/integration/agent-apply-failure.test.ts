// A renewed SVID that cannot be applied (something derived from it fails to build) is a failed rotation: the
// holder keeps the old credentials everywhere, the agent counts result="apply_failure" (not success), logs one
// line and retries; once the new SVID applies, rotation continues.
import { afterEach, describe, expect, it } from 'vitest';
import type { Credentials } from '../../src/agent/index.js';
import { waitFor } from '../helpers/wait.js';
import { CaHarness, type Cleanup, runCleanups, startAgent } from './agent-harness.js';

const cleanups: Cleanup[] = [];
afterEach(() => runCleanups(cleanups));

describe('agent: applying a renewed SVID', () => {
  it('fail/a preparer that throws keeps the old credentials and counts apply_failure, then recovers', async () => {
    const ca = await CaHarness.start(4_000, cleanups);
    const { agent, holder, metrics, logs } = startAgent(ca, await ca.token(), cleanups);
    await agent.whenReady();
    const count = async (result: string) =>
      (await metrics.svidRotations.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
    const original = holder.current as Credentials;
    const successes = await count('success');
    // Exported from 0 before the first failure, so the shipped alert's increase() sees that failure.
    const exposition = await metrics.exposition();
    expect(exposition).toMatch(/^meshauth_svid_rotations_total\{result="apply_failure"\} 0$/m);
    expect(exposition).toMatch(/^meshauth_svid_rotations_total\{result="failure"\} 0$/m);
    let refuse = true;
    cleanups.push(
      holder.prepare((next) => {
        if (refuse && next !== original) throw new Error('secure context cannot be built');
        return () => undefined;
      }),
    );

    // Renewals come every ~2 s; on a loaded machine a few may fail first for other reasons and back off.
    await waitFor('an apply failure', async () => (await count('apply_failure')) >= 1, 30_000);
    expect(holder.current).toBe(original);
    expect(await count('success')).toBe(successes);
    const line = logs.find(
      (l) => l.msg === 'the new SVID could not be applied; keeping the current credentials and retrying',
    );
    expect(line?.level).toBe('error');
    expect(line?.cause).toBe('secure context cannot be built');

    refuse = false;
    await waitFor('a successful rotation after the failure', async () => (await count('success')) > successes, 30_000);
    expect(holder.current).not.toBe(original);
    expect(holder.current?.svid.id.toString()).toBe(original.svid.id.toString());
  }, 75_000);

  it('fail/a first SVID that cannot be applied: /readyz names why beside "no SVID yet"', async () => {
    const ca = await CaHarness.start(4_000, cleanups);
    const { holder, metrics } = startAgent(ca, await ca.token(), cleanups);
    // What /readyz would show at each failure: the next attempt (a join token is single-use, so it is refused)
    // replaces the line soon after.
    const shown: (string | undefined)[] = [];
    const noteFailure = holder.noteFailure.bind(holder);
    holder.noteFailure = (reason: string) => {
      noteFailure(reason);
      shown.push(holder.whyInvalid(new Date()));
    };
    cleanups.push(
      holder.prepare(() => {
        throw new Error('secure context cannot be built');
      }),
    );
    const count = async () =>
      (await metrics.svidRotations.get()).values.find((v) => v.labels.result === 'apply_failure')?.value ?? 0;
    await waitFor('an apply failure', async () => (await count()) >= 1, 30_000);
    expect(holder.current).toBeUndefined();
    expect(shown[0]).toMatch(/^no SVID yet \(last attempt: the new SVID could not be applied: /);
  }, 75_000);
});
