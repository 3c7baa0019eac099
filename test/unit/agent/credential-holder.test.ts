// Atomic credential changes: prepare everything, apply the subscribers, then switch; a preparer or subscriber that
// throws leaves the old credentials in force everywhere.
import { describe, expect, it } from 'vitest';
import {
  CredentialHolder,
  type Credentials,
  CredentialsApplyError,
  SVID_ROOT_NOT_IN_BUNDLE,
} from '../../../src/agent/index.js';
import { TrustBundle } from '../../../src/pki/index.js';
import { TestCa } from '../../helpers/test-ca.js';

async function twoCredentials(): Promise<[Credentials, Credentials]> {
  const ca = await TestCa.create();
  const id = ca.idFor('/ns/shop/sa/a');
  const [one, two] = await Promise.all([ca.issue({ id }), ca.issue({ id })]);
  return [
    { svid: one.svid, bundle: ca.bundle },
    { svid: two.svid, bundle: ca.bundle },
  ];
}

describe('CredentialHolder', () => {
  it('ok/preparers commit together after every subscriber applied', async () => {
    const [first, second] = await twoCredentials();
    const holder = new CredentialHolder(first);
    const events: string[] = [];
    let prepared: Credentials | undefined;
    holder.prepare((next) => {
      events.push('prepare');
      return () => {
        events.push('commit');
        prepared = next;
      };
    });
    holder.subscribe(() => events.push(`subscriber sees current=${holder.current === first ? 'old' : 'new'}`));
    events.length = 0;
    holder.set(second);
    expect(events).toEqual(['prepare', 'subscriber sees current=old', 'commit']);
    expect(holder.current).toBe(second);
    expect(prepared).toBe(second);
  });

  it('ok/prepare() on a holder that has credentials prepares and commits them at once', async () => {
    const [first] = await twoCredentials();
    const holder = new CredentialHolder(first);
    let prepared: Credentials | undefined;
    holder.prepare((next) => () => {
      prepared = next;
    });
    expect(prepared).toBe(first);
  });

  it('fail/a preparer that throws: nothing applied, old credentials kept, CredentialsApplyError', async () => {
    const [first, second] = await twoCredentials();
    const holder = new CredentialHolder(first);
    const applied: Credentials[] = [];
    holder.subscribe((c) => applied.push(c));
    holder.prepare((next) => {
      if (next === second) throw new Error('bad key');
      return () => undefined;
    });
    expect(() => holder.set(second)).toThrow(CredentialsApplyError);
    expect(holder.current).toBe(first);
    expect(applied).toEqual([]);
  });

  it('fail/a subscriber that throws: the ones before it get the old credentials back, old kept', async () => {
    const [first, second] = await twoCredentials();
    const holder = new CredentialHolder(first);
    const inbound: Credentials[] = [];
    let committed = 0;
    holder.prepare(() => () => {
      committed++;
    });
    committed = 0;
    holder.subscribe((c) => inbound.push(c));
    holder.subscribe((c) => {
      if (c === second) throw new Error('cannot apply');
    });
    const error = (() => {
      try {
        holder.set(second);
        return undefined;
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(CredentialsApplyError);
    expect((error as Error).cause).toBeInstanceOf(Error);
    expect(inbound).toEqual([second, first]); // applied, then rolled back
    expect(holder.current).toBe(first);
    expect(committed).toBe(0);
  });

  it('ok/unsubscribe and unprepare stop the calls', async () => {
    const [first, second] = await twoCredentials();
    const holder = new CredentialHolder(first);
    let calls = 0;
    const unsubscribe = holder.subscribe(() => calls++);
    const unprepare = holder.prepare(() => () => calls++);
    calls = 0;
    unsubscribe();
    unprepare();
    holder.set(second);
    expect(calls).toBe(0);
  });

  it("fail/while no SVID is held, whyInvalid repeats the last attempt's failure, shortened; the next SVID clears it", async () => {
    const ca = await TestCa.create();
    const svid = await ca.issue({ id: ca.idFor('/ns/shop/sa/a') });
    const holder = new CredentialHolder();
    holder.noteFailure('MESHAUTH_ERR_TOKEN_UNREADABLE: ca.token /var/run/token: ENOENT');
    expect(holder.whyInvalid(new Date())).toBe(
      'no SVID yet (last attempt: MESHAUTH_ERR_TOKEN_UNREADABLE: ca.token /var/run/token: ENOENT)',
    );
    holder.noteFailure(`MESHAUTH_ERR_CA: ${'x'.repeat(500)}`);
    const long = holder.whyInvalid(new Date()) ?? '';
    expect(long.length).toBeLessThan(240);
    expect(long.endsWith('…)')).toBe(true);
    holder.set({ svid: svid.svid, bundle: ca.bundle });
    expect(holder.whyInvalid(new Date())).toBeUndefined();
    holder.noteFailure('MESHAUTH_ERR_CA: a renewal failed'); // an SVID is held: its own state decides
    expect(holder.whyInvalid(new Date())).toBeUndefined();
  });

  it('fail/whyInvalid names each way an SVID is not valid at a moment (what /readyz answers), isValid agrees', async () => {
    const ca = await TestCa.create();
    const notBefore = new Date('2026-01-01T00:00:00.000Z');
    const notAfter = new Date('2026-01-01T01:00:00.000Z');
    const svid = await ca.issue({ id: ca.idFor('/ns/shop/sa/a'), notBefore, notAfter });
    const empty = new CredentialHolder();
    expect(empty.whyInvalid(notBefore)).toBe('no SVID yet');
    const holder = new CredentialHolder({ svid: svid.svid, bundle: ca.bundle });
    const cases: [Date, string | undefined][] = [
      [new Date(notBefore.getTime() - 1), 'SVID not valid before 2026-01-01T00:00:00.000Z'],
      [notBefore, undefined],
      [new Date(notAfter.getTime() - 1), undefined],
      [notAfter, 'SVID expired at 2026-01-01T01:00:00.000Z'],
    ];
    for (const [at, why] of cases) {
      expect(holder.whyInvalid(at)).toBe(why);
      expect(holder.isValid(at)).toBe(why === undefined);
    }
  });
});

describe('CredentialHolder.whyInvalid and the bundle', () => {
  const now = () => new Date();

  it('ok/an SVID under a root of the held bundle (alone, or among others) is valid', async () => {
    const [ca, other] = await Promise.all([TestCa.create(), TestCa.create()]);
    const { svid } = await ca.issue({ id: ca.idFor('/ns/shop/sa/a') });
    const both = new TrustBundle(ca.trustDomain, [other.root, ca.root]);
    expect(new CredentialHolder({ svid, bundle: ca.bundle }).whyInvalid(now())).toBeUndefined();
    expect(new CredentialHolder({ svid, bundle: both }).whyInvalid(now())).toBeUndefined();
  });

  it('ok/an SVID issued by the root itself, or through three intermediates, is valid', async () => {
    const ca = await TestCa.create();
    const id = ca.idFor('/ns/shop/sa/a');
    const direct = await ca.issueThrough([], { id, under: 'root' });
    const deep = await ca.issueThrough([{}, {}], { id, under: 'intermediate' });
    expect(new CredentialHolder({ svid: direct.svid, bundle: ca.bundle }).whyInvalid(now())).toBeUndefined();
    expect(new CredentialHolder({ svid: deep.svid, bundle: ca.bundle }).whyInvalid(now())).toBeUndefined();
  });

  it('fail/the bundle no longer holds the SVID’s root (same trust domain, same names, other keys)', async () => {
    const [ca, next] = await Promise.all([TestCa.create(), TestCa.create()]);
    const { svid } = await ca.issue({ id: ca.idFor('/ns/shop/sa/a') });
    const holder = new CredentialHolder({ svid, bundle: ca.bundle });
    holder.set({ svid, bundle: next.bundle });
    expect(holder.whyInvalid(now())).toBe(SVID_ROOT_NOT_IN_BUNDLE);
    expect(holder.isValid(now())).toBe(false);
    // The next bundle brings the root back: decided again for the new credentials.
    holder.set({ svid, bundle: new TrustBundle(ca.trustDomain, [next.root, ca.root]) });
    expect(holder.whyInvalid(now())).toBeUndefined();
  });

  it('fail/expiry is named before the root', async () => {
    const [ca, next] = await Promise.all([TestCa.create(), TestCa.create()]);
    const { svid } = await ca.issue({ id: ca.idFor('/ns/shop/sa/a') });
    const later = new Date(svid.notAfter.getTime() + 1_000);
    expect(new CredentialHolder({ svid, bundle: next.bundle }).whyInvalid(later)).toBe(
      `SVID expired at ${svid.notAfter.toISOString()}`,
    );
  });
});
