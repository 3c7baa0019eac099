// A renewed SVID that cannot be applied (something derived from it fails to build) is a failed rotation: the
// holder keeps the old credentials everywhere, the agent counts result="apply_failure" (not success), logs one
// line and retries; once the new SVID applies, rotation continues. A first SVID that cannot be applied is kept and
// renewed with: the join token that brought it is single-use, so bootstrapping again could never succeed.
import { afterEach, describe, expect, it } from 'vitest';
import type { Credentials } from '../../src/agent/index.js';
import { waitFor } from '../helpers/wait.js';
import { CaHarness, type Cleanup, runCleanups, startAgent, WORKLOAD_ID } from './agent-harness.js';

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
    // What /readyz would show at each failure: the next attempt (a renewal with the unapplied SVID, which fails to
    // apply again) replaces the line soon after.
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

  it('ok/a first SVID that cannot be applied is renewed with, not bootstrapped again: the agent gets ready', async () => {
    const ca = await CaHarness.start(60_000, cleanups);
    const { agent, holder, metrics, logs } = startAgent(ca, await ca.token(), cleanups);
    const count = async (result: string) =>
      (await metrics.svidRotations.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
    let refused = 0;
    cleanups.push(
      holder.prepare(() => {
        refused += 1;
        if (refused === 1) throw new Error('secure context cannot be built');
        return () => undefined;
      }),
    );
    await waitFor('an apply failure', async () => (await count('apply_failure')) >= 1, 30_000);
    expect(holder.current).toBeUndefined();
    await waitFor('an SVID applied after the failure', () => holder.current !== undefined, 30_000);
    await agent.whenReady();
    expect(holder.current?.svid.id.toString()).toBe(WORKLOAD_ID);
    expect(await count('success')).toBe(1);
    // The retry renewed (mTLS with the unapplied SVID); a second bootstrap would have met the used join token.
    expect(logs.filter((l) => l.msg === 'SVID renewed')).toHaveLength(1);
    expect(logs.some((l) => l.msg === 'SVID obtained')).toBe(false);
    expect(await count('failure')).toBe(0);
  }, 75_000);
});
