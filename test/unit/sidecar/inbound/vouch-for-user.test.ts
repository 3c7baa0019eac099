// The voucher's origin passport, shared by the requests of one kept user (the verifier hands back the same EndUser for
// a token it verified before): one origin while at least PASSPORT_TTL_SECONDS of it are left, so the call chain has
// as long to forward it as with an origin of its own, and a new one when that is no longer so, when the SVID changes
// or when the clock went back past its mint.
import { beforeAll, describe, expect, it } from 'vitest';
import { CredentialHolder } from '../../../../src/agent/credential-holder.js';
import { type EndUser, endUserFromClaims } from '../../../../src/authn/end-user.js';
import { PASSPORT_HEADER } from '../../../../src/authn/passport/index.js';
import { passportOwner, vouchForUser } from '../../../../src/sidecar/inbound/vouch-for-user.js';
import { PassportStore } from '../../../../src/sidecar/passport-store.js';
import { TestCa, type TestSvid } from '../../../helpers/test-ca.js';

let ca: TestCa;
let first: TestSvid;
let second: TestSvid;
const T0 = Date.UTC(2026, 11, 5, 12, 0, 0);

beforeAll(async () => {
  ca = await TestCa.create('example.org');
  first = await ca.issue({ id: ca.idFor('/ns/shop/sa/web') });
  second = await ca.issue({ id: ca.idFor('/ns/shop/sa/web') });
});

function user(expiresInS: number): EndUser {
  const made = endUserFromClaims({ sub: 'alice', iss: 'https://idp.test', exp: T0 / 1000 + expiresInS }, []);
  if (made === undefined) throw new Error('user');
  return made;
}

function voucher(svid: TestSvid) {
  const clock = { ms: T0 };
  const holder = new CredentialHolder({ svid: svid.svid, bundle: ca.bundle });
  const store = new PassportStore();
  const origin = (of: EndUser): { raw: string; iat: number; exp: number } => {
    const outcome = vouchForUser(of, { holder, store, now: () => new Date(clock.ms), dropAuthorization: true });
    const raw = outcome.headers?.[PASSPORT_HEADER];
    if (typeof raw !== 'string') throw new Error('no origin');
    const claims = JSON.parse(Buffer.from(raw.split('.')[1] as string, 'base64url').toString('utf8'));
    return { raw, iat: claims.iat, exp: claims.exp };
  };
  return { clock, holder, store, origin };
}

describe('vouchForUser: one origin per kept user', () => {
  it('ok/one user object shares one 60 s origin while 30 s of it are left', () => {
    const { clock, origin } = voucher(first);
    const alice = user(3600);
    const minted = origin(alice);
    expect(minted.exp - minted.iat).toBe(60);
    clock.ms = T0 + 30_000; // exactly 30 s left
    expect(origin(alice).raw).toBe(minted.raw);
    clock.ms = T0 + 31_000; // 29 s left: a new one
    const next = origin(alice);
    expect(next.raw).not.toBe(minted.raw);
    expect(next.iat).toBe(T0 / 1000 + 31);
  });

  it('ok/another user object (another token) gets its own origin', () => {
    const { origin } = voucher(first);
    expect(origin(user(3600)).raw).not.toBe(origin(user(3600)).raw);
  });

  it('ok/a user whose token ends within 30 s shares one origin that ends with its token (a new one could not live longer)', () => {
    const { clock, origin } = voucher(first);
    const leaving = user(20);
    const one = origin(leaving);
    expect(one.exp).toBe(T0 / 1000 + 20);
    clock.ms = T0 + 19_000;
    expect(origin(leaving).raw).toBe(one.raw);
    clock.ms = T0 + 20_000; // the origin has expired: never handed out again
    expect(origin(leaving).raw).not.toBe(one.raw);
  });

  it('ok/an origin that reached its token’s end while handed out is kept to the end', () => {
    const { clock, origin } = voucher(first);
    const alice = user(80); // minted for 60 s at T0, the token ends at T0 + 80
    const minted = origin(alice);
    expect(minted.exp).toBe(T0 / 1000 + 60);
    clock.ms = T0 + 31_000; // 29 s left of the origin, 49 s of the token: a new one, to the token's end
    const last = origin(alice);
    expect(last.raw).not.toBe(minted.raw);
    expect(last.exp).toBe(T0 / 1000 + 80);
    clock.ms = T0 + 79_000; // 1 s left of both: still the same
    expect(origin(alice).raw).toBe(last.raw);
  });

  it('fail/a new SVID, or a clock gone back past the mint, mints a new origin', () => {
    const { clock, holder, origin } = voucher(first);
    const alice = user(3600);
    clock.ms = T0 + 10_000;
    const minted = origin(alice);
    clock.ms = T0 + 9_000; // back before the mint: the origin's iat would be in the next hop's future
    const afterStep = origin(alice);
    expect(afterStep.raw).not.toBe(minted.raw);
    expect(origin(alice).raw).toBe(afterStep.raw);
    holder.set({ svid: second.svid, bundle: ca.bundle });
    expect(origin(alice).raw).not.toBe(afterStep.raw);
  });

  it('ok/the store keeps a shared origin for the outbound side until it expires', () => {
    const { store, origin } = voucher(first);
    const alice = user(3600);
    const minted = origin(alice);
    origin(alice);
    expect(store.lookup(minted.raw, T0 + 59_000)?.origin).toBe(minted.raw);
    expect(store.lookup(minted.raw, T0 + 60_000)).toBeUndefined();
  });
});

// Found in review: the owner was the user alone, so a peer sending a sidecar 1,000 links for a user evicted the
// passport another hop had sent for that user; and `iss + " " + sub` let two different users share one owner.
describe('passportOwner', () => {
  it('fail/the inbound counts each peer’s passports of a user apart; the parts never run together', () => {
    const alice = user(300);
    expect(passportOwner(alice, 'spiffe://example.org/ns/a/sa/a')).not.toBe(
      passportOwner(alice, 'spiffe://example.org/ns/b/sa/b'),
    );
    expect(passportOwner(alice)).not.toBe(passportOwner(alice, 'spiffe://example.org/ns/a/sa/a'));
    const spaced = (iss: string, sub: string) => endUserFromClaims({ sub, iss, exp: T0 / 1000 + 300 }, []) as EndUser;
    expect(passportOwner(spaced('https://a b', 'c'))).not.toBe(passportOwner(spaced('https://a', 'b c')));
  });
});
