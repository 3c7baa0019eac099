// A CA whose clock runs minutes ahead: its serving certificate, back-dated one minute by its own clock, is not yet
// valid by ours, so every call fails the TLS check before a token is sent. That is a clean refusal, retried with
// backoff; the log must also name clock skew as the likely cause, as it does for an SVID that is not yet valid, or an
// operator reads only "failed TLS authentication" and looks for a wrong bundle.
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import { CaHarness, type Cleanup, rotations, runCleanups, startAgent } from './agent-harness.js';

const cleanups: Cleanup[] = [];
afterEach(() => runCleanups(cleanups));

const SKEW_LINE = "clock skew suspected: the CA's certificate is not yet valid by our clock";

describe('agent against a CA whose clock is ahead', () => {
  it('fail/the CA certificate not yet valid is refused, retried, and logged once as suspected clock skew', async () => {
    const ca = await CaHarness.start(60_000, cleanups, { now: () => new Date(Date.now() + 5 * 60_000) });
    const { holder, metrics, logs } = startAgent(ca, await ca.token(), cleanups);
    await waitFor('three failed attempts', async () => (await rotations(metrics, 'failure')) >= 3, 15_000);

    expect(holder.current).toBeUndefined();
    const failures = logs.filter((l) => l.msg === 'SVID bootstrap failed; no valid SVID, retrying');
    expect(failures.every((l) => l.reason === 'tls' && l.code === 'MESHAUTH_ERR_CA_UNAVAILABLE')).toBe(true);
    const skew = logs.filter((l) => l.msg === SKEW_LINE);
    expect(skew).toHaveLength(1);
    expect(skew[0]?.level).toBe('warn');
    expect(typeof skew[0]?.localTime).toBe('string');
  });
});
