// An agent that never obtained an SVID, started with a join token another start already spent: the CA refuses the
// token (401), and the warn line must say that this token was never good here and a new one is needed, not talk of
// an SVID that expired (there never was one).
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import { CaHarness, type Cleanup, runCleanups, startAgent } from './agent-harness.js';

const cleanups: Cleanup[] = [];
afterEach(() => runCleanups(cleanups));

describe('agent first bootstrap with a used join token', () => {
  it('fail/never bootstrapped, token already used → the warning asks for a new join token', async () => {
    const ca = await CaHarness.start(60_000, cleanups);
    const token = await ca.token();
    const first = startAgent(ca, token, cleanups);
    await first.agent.whenReady();
    await first.agent.close();

    const second = startAgent(ca, token, cleanups);
    const warned = await waitFor(
      'the refused token warned about',
      () => second.logs.find((line) => line.level === 'warn' && line.tokenFile === second.tokenFile),
      10_000,
    );
    expect(second.holder.current).toBeUndefined();
    expect(warned.msg).toBe(
      'the CA refused the bootstrap credential and no SVID was ever obtained: a join token that is unknown, ' +
        'expired or already used cannot bootstrap (a join token is single-use, so a used one cannot bootstrap ' +
        'again); write a new join token (`meshauth ca token create --id <spiffe-id>`) to the token file, the ' +
        'agent reads it at its next attempt (a Kubernetes service-account token file is refreshed by the kubelet ' +
        'and re-read on each attempt)',
    );
  }, 30_000);
});
