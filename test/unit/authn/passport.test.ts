import { createPrivateKey, sign } from 'node:crypto';
import { SignJWT } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { endUserFromClaims } from '../../../src/authn/end-user.js';
import {
  leafKeyOf,
  mintOriginPassport,
  ownOrigin,
  PASSPORT_TYP,
  type PassportVerifyContext,
  type ReceivedPassport,
  sha256Base64url,
  signCompact,
  thumbprintOfDer,
  verifyPassport,
  wrapPassport,
} from '../../../src/authn/passport/index.js';
import { isMeshauthError } from '../../../src/errors/index.js';
import { SpiffeId } from '../../../src/identity/index.js';
import { TestCa, type TestSvid } from '../../helpers/test-ca.js';

let ca: TestCa;
let otherCa: TestCa;
let gateway: TestSvid;
let b: TestSvid;
let c: TestSvid;
let d: TestSvid;
let foreign: TestSvid;
const now = new Date();
const userExpiresAt = Math.floor(now.getTime() / 1000) + 600;
const user = endUserFromClaims({ sub: 'alice', iss: 'https://idp.test', scope: 'orders:read', exp: userExpiresAt }, [
  'scope',
]);

beforeAll(async () => {
  ca = await TestCa.create('example.org');
  otherCa = await TestCa.create('example.org');
  gateway = await ca.issue({ id: ca.idFor('/ns/edge/sa/gateway') });
  b = await ca.issue({ id: ca.idFor('/ns/shop/sa/orders') });
  c = await ca.issue({ id: ca.idFor('/ns/shop/sa/payments') });
  d = await ca.issue({ id: ca.idFor('/ns/shop/sa/other') });
  foreign = await otherCa.issue({ id: ca.idFor('/ns/edge/sa/gateway') });
});

function contextFor(
  self: TestSvid,
  peer: TestSvid,
  overrides: Partial<PassportVerifyContext> = {},
): PassportVerifyContext {
  return {
    self: SpiffeId.parse(self.id),
    peerId: SpiffeId.parse(peer.id),
    peerThumbprint: thumbprintOfDer(new Uint8Array(peer.leaf.rawData)),
    peerKey: leafKeyOf(Buffer.from(peer.leaf.rawData).toString('base64')).key,
    bundle: ca.bundle,
    vouchers: new Set([gateway.id]),
    claims: ['scope'],
    now,
    ...overrides,
  };
}

function id(svid: TestSvid): SpiffeId {
  return SpiffeId.parse(svid.id);
}

/** What the voucher's app holds after its sidecar validated the end user's token. */
function originAt(voucher = gateway): ReceivedPassport {
  if (user === undefined) throw new Error('fixture user');
  return ownOrigin(mintOriginPassport({ svid: voucher.svid, now, user }), id(voucher), userExpiresAt);
}

/** gateway → B on the wire. */
function gatewayToB(voucher = gateway, to = b): string {
  return wrapPassport({ svid: voucher.svid, audience: id(to), now, received: originAt(voucher) });
}

function expectRejected(run: () => unknown, reason: string, code = 'MESHAUTH_ERR_PASSPORT_INVALID') {
  let error: unknown;
  try {
    run();
  } catch (e) {
    error = e;
  }
  expect(isMeshauthError(error), String(error)).toBe(true);
  expect((error as { code: string }).code).toBe(code);
  expect((error as { reason: string }).reason).toBe(reason);
}

describe('passport', () => {
  it('ok/first hop: gateway → B carries the end user and the chain [gateway]', () => {
    const verified = verifyPassport(gatewayToB(), contextFor(b, gateway));
    expect(verified.user.sub).toBe('alice');
    expect(verified.user.exposed).toEqual({ sub: 'alice', iss: 'https://idp.test', scope: 'orders:read' });
    expect(verified.chain).toEqual([gateway.id]);
  });

  it('ok/second hop: gateway → B → C sees the user and the chain [gateway, B]', () => {
    const atB = verifyPassport(gatewayToB(), contextFor(b, gateway));
    const toC = wrapPassport({ svid: b.svid, audience: id(c), now, received: atB });
    const atC = verifyPassport(toC, contextFor(c, b));
    expect(atC.user.sub).toBe('alice');
    expect(atC.chain).toEqual([gateway.id, b.id]);
    expect(toC.split(',')).toHaveLength(2);
    expect(toC.split(',')[1]).toBe(atB.origin);
  });

  it('ok/the link: aud, act, org, short lifetime', () => {
    const atB = verifyPassport(gatewayToB(), contextFor(b, gateway));
    const toC = wrapPassport({ svid: b.svid, audience: id(c), now, received: atB });
    const [link, origin] = toC.split(',');
    const claims = JSON.parse(Buffer.from((link as string).split('.')[1] as string, 'base64url').toString());
    expect(claims.org).toBe(sha256Base64url(origin as string));
    expect(claims.act).toEqual({ sub: b.id, act: { sub: gateway.id } });
    expect(claims.aud).toBe(c.id);
    expect(claims.exp - claims.iat).toBeLessThanOrEqual(60);
  });

  it('fail/replay: a passport captured at B and sent from C (another identity) is rejected', () => {
    expectRejected(() => verifyPassport(gatewayToB(), contextFor(b, c)), 'signature');
  });

  it('fail/replay: C re-sends what B received, as its own link', () => {
    const atB = gatewayToB();
    expectRejected(() => verifyPassport(atB, contextFor(d, c)), 'signature');
  });

  it('fail/audience: a passport addressed to B sent to D is rejected', () => {
    expectRejected(() => verifyPassport(gatewayToB(), contextFor(d, gateway)), 'audience');
  });

  it('fail/expired: verified two minutes later', () => {
    const later = new Date(now.getTime() + 120_000);
    expectRejected(() => verifyPassport(gatewayToB(), contextFor(b, gateway, { now: later })), 'expired');
  });

  it('fail/expired origin: a link dated at the end of its origin is refused once the origin is past its exp', () => {
    // Found in review: the origin was checked at the link's iat only, which the link's signer chooses, so a link dated
    // at the origin's exp carried it for a link lifetime more (about 130 s after minting, where the origin says 60).
    const received = originAt();
    const originExp = JSON.parse(Buffer.from(received.origin.split('.')[1] as string, 'base64url').toString()).exp;
    const wire = wrapPassport({ svid: gateway.svid, audience: id(b), now: new Date(originExp * 1000), received });
    expect(verifyPassport(wire, contextFor(b, gateway, { now: new Date((originExp + 5) * 1000) })).user.sub).toBe(
      'alice',
    );
    expectRejected(
      () => verifyPassport(wire, contextFor(b, gateway, { now: new Date((originExp + 30) * 1000) })),
      'expired',
    );
  });

  it('fail/tampered: a changed origin breaks the link', () => {
    const [link, origin] = gatewayToB().split(',');
    const [h, p, s] = (origin as string).split('.');
    const claims = JSON.parse(Buffer.from(p as string, 'base64url').toString());
    claims.usr.sub = 'mallory';
    const forged = [h, Buffer.from(JSON.stringify(claims)).toString('base64url'), s].join('.');
    expectRejected(() => verifyPassport(`${link},${forged}`, contextFor(b, gateway)), 'chain_broken');
  });

  it('fail/tampered: a changed link breaks its signature', () => {
    const [link, origin] = gatewayToB().split(',');
    const [h, p, s] = (link as string).split('.');
    const claims = JSON.parse(Buffer.from(p as string, 'base64url').toString());
    claims.aud = d.id;
    const forged = [h, Buffer.from(JSON.stringify(claims)).toString('base64url'), s].join('.');
    expectRejected(() => verifyPassport(`${forged},${origin}`, contextFor(d, gateway)), 'signature');
  });

  it('fail/ambiguous: a link naming aud twice (JSON.parse reads the last, other readers the first) is refused', () => {
    const [link, origin] = gatewayToB(gateway, d).split(',');
    const [h, p] = (link as string).split('.');
    const claims = JSON.parse(Buffer.from(p as string, 'base64url').toString());
    // Signed by the gateway itself: only the duplicate name is wrong. Without the check, B took it as its own.
    const text = JSON.stringify(claims).replace(/}$/, `,"aud":${JSON.stringify(b.id)}}`);
    const input = `${h}.${Buffer.from(text).toString('base64url')}`;
    const signature = sign('sha256', Buffer.from(input), { key: gateway.keyPem, dsaEncoding: 'ieee-p1363' });
    const forged = `${input}.${signature.toString('base64url')}`;
    expectRejected(() => verifyPassport(`${forged},${origin}`, contextFor(b, gateway)), 'format');
  });

  it('fail/not-vouched: an origin minted by a service that may not vouch for users', () => {
    expectRejected(() => verifyPassport(gatewayToB(d, b), contextFor(b, d)), 'not_vouched');
  });

  it('fail/forged-act: B claims a different first actor than the origin signer', () => {
    const atB = verifyPassport(gatewayToB(), contextFor(b, gateway));
    const toC = wrapPassport({ svid: b.svid, audience: id(c), now, received: { ...atB, act: { sub: d.id } } });
    expectRejected(() => verifyPassport(toC, contextFor(c, b)), 'act_mismatch');
  });

  it.each([
    ['another trust domain', 'spiffe://other.org/ns/shop/sa/orders'],
    ['the trust domain itself, not a workload', 'spiffe://example.org'],
  ])('fail/foreign-hop: B names a middle hop of %s; the passport is refused', (_, hop) => {
    const atB = verifyPassport(gatewayToB(), contextFor(b, gateway));
    // B is compromised: its link says the call came gateway → hop → B. Only B's own signature vouches for `hop`.
    const act = { sub: hop, act: { sub: gateway.id } };
    const toC = wrapPassport({ svid: b.svid, audience: id(c), now, received: { ...atB, act } });
    expectRejected(() => verifyPassport(toC, contextFor(c, b)), 'chain_foreign_hop');
  });

  it('ok/middle hop: a workload of the trust domain named only by the peer is accepted', () => {
    const atB = verifyPassport(gatewayToB(), contextFor(b, gateway));
    const act = { sub: d.id, act: { sub: gateway.id } };
    const toC = wrapPassport({ svid: b.svid, audience: id(c), now, received: { ...atB, act } });
    expect(verifyPassport(toC, contextFor(c, b)).chain).toEqual([gateway.id, d.id, b.id]);
  });

  it('fail/forged-origin: B invents an origin "from the gateway" signed with its own key', () => {
    const iat = Math.floor(now.getTime() / 1000);
    const self = leafKeyOf(Buffer.from(b.leaf.rawData).toString('base64'));
    const fakeOrigin = signCompact(
      {
        typ: PASSPORT_TYP,
        x5c: [Buffer.from(b.leaf.rawData).toString('base64'), Buffer.from(ca.intermediate.rawData).toString('base64')],
      },
      {
        iss: gateway.id,
        aud: gateway.id,
        iat,
        exp: iat + 30,
        jti: 'x',
        cnf: { 'x5t#S256': self.thumbprint },
        act: { sub: gateway.id },
        usr: { sub: 'root', iss: 'https://idp.test' },
        uex: iat + 30,
      },
      createPrivateKey(b.keyPem),
      { alg: 'ES256', hash: 'sha256', ecdsaSize: 32 },
    );
    const received = { raw: 'x', origin: fakeOrigin, act: { sub: gateway.id }, userExpiresAt: iat + 30 };
    const toC = wrapPassport({ svid: b.svid, audience: id(c), now, received });
    expectRejected(() => verifyPassport(toC, contextFor(c, b)), 'signer_not_peer');
  });

  it('fail/untrusted-signer: an origin signed by a certificate of another CA', () => {
    if (user === undefined) throw new Error('fixture user');
    const fake = mintOriginPassport({ svid: foreign.svid, now, user });
    const received = { raw: 'x', origin: fake, act: { sub: gateway.id }, userExpiresAt };
    const toC = wrapPassport({ svid: b.svid, audience: id(c), now, received });
    expectRejected(() => verifyPassport(toC, contextFor(c, b)), 'untrusted_signer');
  });

  it('fail/broken-link: a link paired with another origin than the one it names', () => {
    const [link] = gatewayToB().split(',');
    const [, otherOrigin] = gatewayToB().split(',');
    expectRejected(() => verifyPassport(`${link},${otherOrigin}`, contextFor(b, gateway)), 'chain_broken');
  });

  it('fail/origin-alone: the self-addressed origin is never accepted on the wire', () => {
    expectRejected(() => verifyPassport(originAt().raw, contextFor(b, gateway)), 'format');
  });

  it('fail/too-deep: a chain longer than maxDepth gets MESHAUTH_ERR_PASSPORT_TOO_DEEP', () => {
    const atB = verifyPassport(gatewayToB(), contextFor(b, gateway));
    const atC = verifyPassport(wrapPassport({ svid: b.svid, audience: id(c), now, received: atB }), contextFor(c, b));
    const toD = wrapPassport({ svid: c.svid, audience: id(d), now, received: atC });
    expect(verifyPassport(toD, contextFor(d, c)).chain).toEqual([gateway.id, b.id, c.id]);
    expectRejected(
      () => verifyPassport(toD, contextFor(d, c, { maxDepth: 2 })),
      'too_deep',
      'MESHAUTH_ERR_PASSPORT_TOO_DEEP',
    );
  });

  it('fail/format: garbage, three parts, extra header parameters, alg none', async () => {
    expectRejected(() => verifyPassport('not-a-jws', contextFor(b, gateway)), 'format');
    const wire = gatewayToB();
    expectRejected(() => verifyPassport(`${wire},${wire.split(',')[1]}`, contextFor(b, gateway)), 'format');
    const withJku = await new SignJWT({ iss: gateway.id })
      .setProtectedHeader({ alg: 'ES256', typ: PASSPORT_TYP, jku: 'https://evil.test/jwks' })
      .sign(gateway.keys.privateKey);
    expectRejected(() => verifyPassport(`${withJku},${wire.split(',')[1]}`, contextFor(b, gateway)), 'format');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: PASSPORT_TYP })).toString('base64url')}.${Buffer.from('{}').toString('base64url')}.AA`;
    expectRejected(() => verifyPassport(`${none},${wire.split(',')[1]}`, contextFor(b, gateway)), 'signature');
  });
});

// A link is checked once per header value and peer certificate (its sender shares it across requests, sharedLink),
// and kept only once its whole passport verified; what depends on the connection, this sidecar and the clock is
// checked on every use. Each case verifies the passport once as it should be, then again with one thing changed.
describe('passport: a link verified before', () => {
  /** The peer's certificate thumbprint with another key: what shows whether the link's signature is checked. */
  const wrongKey = () => leafKeyOf(Buffer.from(d.leaf.rawData).toString('base64')).key;

  it('ok/a link kept is not checked again against the key: the certificate thumbprint stands for it', () => {
    const wire = gatewayToB();
    expectRejected(() => verifyPassport(wire, contextFor(b, gateway, { peerKey: wrongKey() })), 'signature');
    verifyPassport(wire, contextFor(b, gateway));
    expect(verifyPassport(wire, contextFor(b, gateway, { peerKey: wrongKey() })).user.sub).toBe('alice');
  });

  it('fail/a passport refused after its link held (here: a voucher not allowed) keeps nothing', () => {
    // Found in review: links were kept once their own checks passed, so a peer signing links beside origins nobody
    // vouched for filled the receiver's memory with passports it refused.
    const wire = gatewayToB();
    expectRejected(() => verifyPassport(wire, contextFor(b, gateway, { vouchers: new Set() })), 'not_vouched');
    expectRejected(() => verifyPassport(wire, contextFor(b, gateway, { peerKey: wrongKey() })), 'signature');
  });

  it('ok/the same header verified again gives the same user and chain', () => {
    const wire = gatewayToB();
    const first = verifyPassport(wire, contextFor(b, gateway));
    const again = verifyPassport(wire, contextFor(b, gateway, { now: new Date(now.getTime() + 20_000) }));
    expect(again.user).toEqual(first.user);
    expect(again.chain).toEqual(first.chain);
  });

  it('fail/expired: the same link once its time is past', () => {
    const wire = gatewayToB();
    verifyPassport(wire, contextFor(b, gateway));
    const later = new Date(now.getTime() + 120_000);
    expectRejected(() => verifyPassport(wire, contextFor(b, gateway, { now: later })), 'expired');
    const before = new Date(now.getTime() - 60_000);
    expectRejected(() => verifyPassport(wire, contextFor(b, gateway, { now: before })), 'expired');
  });

  it('fail/audience: the same link at another sidecar, under the same peer key', () => {
    const wire = gatewayToB();
    verifyPassport(wire, contextFor(b, gateway));
    expectRejected(() => verifyPassport(wire, contextFor(d, gateway)), 'audience');
  });

  it('fail/signer: the same key presented as another peer ID or certificate', () => {
    const wire = gatewayToB();
    verifyPassport(wire, contextFor(b, gateway));
    expectRejected(() => verifyPassport(wire, contextFor(b, gateway, { peerId: id(c) })), 'signer_not_peer');
    const otherThumbprint = thumbprintOfDer(new Uint8Array(c.leaf.rawData));
    expectRejected(
      () => verifyPassport(wire, contextFor(b, gateway, { peerThumbprint: otherThumbprint })),
      'cnf_mismatch',
    );
  });

  it('fail/broken-link: the same link with another origin than the one it names', () => {
    const wire = gatewayToB();
    verifyPassport(wire, contextFor(b, gateway));
    const [link] = wire.split(',');
    const [, otherOrigin] = gatewayToB().split(',');
    expectRejected(() => verifyPassport(`${link},${otherOrigin}`, contextFor(b, gateway)), 'chain_broken');
  });

  it('fail/voucher: the same link once its origin signer may no longer vouch', () => {
    const wire = gatewayToB();
    verifyPassport(wire, contextFor(b, gateway));
    expectRejected(() => verifyPassport(wire, contextFor(b, gateway, { vouchers: new Set() })), 'not_vouched');
  });
});
