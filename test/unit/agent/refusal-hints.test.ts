// The agent's words when the CA refuses its credential: a first bootstrap never talks of an expired SVID, and every
// form names the command that makes a new join token.
import { describe, expect, it } from 'vitest';
import { bootstrapRefusedMessage, renewalRefusedHint } from '../../../src/agent/refusal-hints.js';

describe('refusal hints', () => {
  it.each([
    ['nothing', 'no SVID was ever obtained', 'expired'],
    ['expiry', 'after the SVID expired', 'never obtained'],
    ['refused_renewal', 'after the CA refused to renew the current SVID', 'expired'],
  ] as const)('fail/bootstrap refused after %s → says "%s", not "%s"', (after, says, not) => {
    const message = bootstrapRefusedMessage(after);
    expect(message).toContain(says);
    expect(message).not.toContain(not === 'expired' ? 'SVID expired' : not);
    expect(message).toContain('`meshauth ca token create --id <spiffe-id>`');
  });

  it('fail/renewal refused → the hint names the token file and needs no restart', () => {
    const hint = renewalRefusedHint('/var/run/meshauth/token');
    expect(hint).toContain('token file /var/run/meshauth/token');
    expect(hint).toContain('no restart needed');
  });
});
