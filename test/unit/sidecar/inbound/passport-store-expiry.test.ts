// How long a sidecar may wrap a passport it received (or minted) for its app's downstream calls: never past the
// origin's expiry, since the next hop refuses a link minted after it. The store kept entries 60 s while an origin
// lives 30 s, so calls 36–60 s after the user's request were wrapped here and refused one hop later as "expired"
// (found by an outside audit).
import { beforeAll, describe, expect, it } from 'vitest';
import { endUserFromClaims } from '../../../../src/authn/end-user.js';
import {
  leafKeyOf,
  mintOriginPassport,
  ownOrigin,
  thumbprintOfDer,
  verifyPassport,
  wrapPassport,
} from '../../../../src/authn/passport/index.js';
import { SpiffeId } from '../../../../src/identity/index.js';
import { PASSPORT_STORE_TTL_MS, passportStoreExpiry } from '../../../../src/sidecar/inbound/vouch-for-user.js';
import { TestCa, type TestSvid } from '../../../helpers/test-ca.js';

let ca: TestCa;
let gateway: TestSvid;
let orders: TestSvid;
let payments: TestSvid;

beforeAll(async () => {
  ca = await TestCa.create('example.org');
  gateway = await ca.issue({ id: ca.idFor('/ns/edge/sa/gateway') });
  orders = await ca.issue({ id: ca.idFor('/ns/shop/sa/orders') });
  payments = await ca.issue({ id: ca.idFor('/ns/shop/sa/payments') });
});

const context = (self: TestSvid, peer: TestSvid, now: Date) => ({
  self: SpiffeId.parse(self.id),
  peerId: SpiffeId.parse(peer.id),
  peerThumbprint: thumbprintOfDer(new Uint8Array(peer.leaf.rawData)),
  peerKey: leafKeyOf(Buffer.from(peer.leaf.rawData).toString('base64')).key,
  bundle: ca.bundle,
  vouchers: new Set([gateway.id]),
  claims: [],
  now,
});

describe('passportStoreExpiry', () => {
  it('ok/the earliest of the user token, the origin and 60 s', () => {
    expect(passportStoreExpiry(100, 50, 0)).toBe(50_000);
    expect(passportStoreExpiry(20, 50, 0)).toBe(20_000);
    expect(passportStoreExpiry(1_000, 1_000, 0)).toBe(PASSPORT_STORE_TTL_MS);
  });

  it('ok/a passport the store still holds wraps into one the next hop accepts; past that it is gone', () => {
    const t0 = new Date();
    const user = endUserFromClaims({ sub: 'alice', iss: 'https://idp.test', exp: t0.getTime() / 1000 + 3600 }, []);
    if (user === undefined) throw new Error('user');
    const origin = ownOrigin(
      mintOriginPassport({ svid: gateway.svid, now: t0, user }),
      SpiffeId.parse(gateway.id),
      user.expiresAt,
    );
    const toOrders = wrapPassport({
      svid: gateway.svid,
      audience: SpiffeId.parse(orders.id),
      now: t0,
      received: origin,
    });
    const atOrders = verifyPassport(toOrders, context(orders, gateway, t0));
    const heldUntil = passportStoreExpiry(atOrders.userExpiresAt, atOrders.originExpiresAt, t0.getTime());
    // Before: held for 60 s; at 40 s the wrap was refused by the next hop.
    expect(heldUntil).toBeLessThan(t0.getTime() + 40_000);
    const last = new Date(heldUntil);
    const toPayments = wrapPassport({
      svid: orders.svid,
      audience: SpiffeId.parse(payments.id),
      now: last,
      received: atOrders,
    });
    expect(() => verifyPassport(toPayments, context(payments, orders, last))).not.toThrow();
  });
});
