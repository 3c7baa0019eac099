// The wall clock jumps forward under a running agent: a host suspended and resumed, or an NTP step. Node's timers
// count on a monotonic clock that did not see the gap, while SVID validity is wall-clock time (the agent's, its
// peers', the CA's). The agent must renew by the wall clock too: a renewal timer armed for half the lifetime would
// otherwise fire after the SVID expired, and with a used join token the agent could not bootstrap again.
import { afterEach, describe, expect, it } from 'vitest';
import type { Credentials } from '../../src/agent/index.js';
import { waitFor } from '../helpers/wait.js';
import { CaHarness, type Cleanup, rotations, runCleanups, startAgent } from './agent-harness.js';

const cleanups: Cleanup[] = [];
afterEach(() => runCleanups(cleanups));

describe('agent: the wall clock jumps forward', () => {
  it('fail/a jump past the renewal point renews at once, before the SVID expires by the new time', async () => {
    // One clock for the CA and the agent: the world moved on while this process's timers were asleep.
    let jumpMs = 0;
    const now = () => new Date(Date.now() + jumpMs);
    const ca = await CaHarness.start(30_000, cleanups, { now });
    const { agent, holder, metrics, logs } = startAgent(ca, await ca.token(), cleanups, { now });
    await agent.whenReady();
    const first = holder.current as Credentials;
    // Renewal is due at about half of the SVID's life; jump to 10 s before its end, well past that point. The timer
    // armed for the renewal still has about 5 s more to wait than the SVID has left.
    jumpMs = first.svid.notAfter.getTime() - Date.now() - 10_000;
    const expiresInMs = first.svid.notAfter.getTime() - now().getTime();
    expect(expiresInMs).toBeGreaterThan(9_000);
    expect(expiresInMs).toBeLessThanOrEqual(10_000);
    let expired = false;
    await waitFor(
      'a renewal, or an expiry and a failed attempt after it',
      async () => {
        if (!holder.isValid(now())) expired = true;
        return holder.current !== first || (expired && (await rotations(metrics, 'failure')) >= 1);
      },
      expiresInMs + 20_000,
      20,
    );
    expect(expired, 'the SVID expired (by the jumped clock) before the agent renewed it').toBe(false);
    const renewed = holder.current as Credentials;
    expect(renewed.svid.notAfter.getTime()).toBeGreaterThan(first.svid.notAfter.getTime());
    expect(logs.find((l) => l.msg === 'SVID renewed')?.mode).toBe('renewal');
    expect(await rotations(metrics, 'failure')).toBe(0);
  }, 40_000);
});
