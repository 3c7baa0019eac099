import { SignJWT } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { endUserFromClaims } from '../../../src/authn/end-user.js';
import {
  leafKeyOf,
  mintOriginPassport,
  PASSPORT_TYP,
  type PassportVerifyContext,
  sha256Base64url,
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
const user = endUserFromClaims(
  { sub: 'alice', iss: 'https://idp.test', scope: 'orders:read', exp: Math.floor(now.getTime() / 1000) + 600 },
  ['scope'],
);

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

async function origin(signer = gateway, audience = b): Promise<string> {
  if (user === undefined) throw new Error('fixture user');
  return mintOriginPassport({ svid: signer.svid, audience: SpiffeId.parse(audience.id), now, user });
}

async function expectRejected(
  run: Promise<unknown> | (() => unknown),
  reason: string,
  code = 'MESHAUTH_ERR_PASSPORT_INVALID',
) {
  let error: unknown;
  try {
    await (typeof run === 'function' ? run() : run);
  } catch (e) {
    error = e;
  }
  expect(isMeshauthError(error), String(error)).toBe(true);
  expect((error as { code: string }).code).toBe(code);
  expect((error as { reason: string }).reason).toBe(reason);
}

describe('passport', () => {
  it('ok/origin: gateway → B carries the end user and the chain [gateway]', async () => {
    const verified = await verifyPassport(await origin(), contextFor(b, gateway));
    expect(verified.user.sub).toBe('alice');
    expect(verified.user.exposed).toEqual({ sub: 'alice', iss: 'https://idp.test', scope: 'orders:read' });
    expect(verified.chain).toEqual([gateway.id]);
  });

  it('ok/wrapped: gateway → B → C sees the user and the chain [gateway, B]', async () => {
    const atB = await verifyPassport(await origin(), contextFor(b, gateway));
    const wrapped = await wrapPassport({ svid: b.svid, audience: SpiffeId.parse(c.id), now, received: atB });
    const atC = await verifyPassport(wrapped, contextFor(c, b));
    expect(atC.user.sub).toBe('alice');
    expect(atC.chain).toEqual([gateway.id, b.id]);
    expect(wrapped.split(',')).toHaveLength(2);
  });

  it('fail/replay: a passport captured at B and sent from C (another identity) is rejected', async () => {
    await expectRejected(async () => verifyPassport(await origin(), contextFor(b, c)), 'signer_not_peer');
  });

  it('fail/audience: a passport addressed to B sent to D is rejected', async () => {
    await expectRejected(async () => verifyPassport(await origin(), contextFor(d, gateway)), 'audience');
  });

  it('fail/expired: verified two minutes later', async () => {
    const later = new Date(now.getTime() + 120_000);
    await expectRejected(async () => verifyPassport(await origin(), contextFor(b, gateway, { now: later })), 'expired');
  });

  it('fail/tampered: a changed payload breaks the signature', async () => {
    const jws = await origin();
    const [h, p, s] = jws.split('.');
    const claims = JSON.parse(Buffer.from(p as string, 'base64url').toString());
    claims.usr.sub = 'mallory';
    const forged = [h, Buffer.from(JSON.stringify(claims)).toString('base64url'), s].join('.');
    await expectRejected(() => verifyPassport(forged, contextFor(b, gateway)), 'signature');
  });

  it('fail/not-vouched: an origin signed by a service that may not vouch for users', async () => {
    await expectRejected(async () => verifyPassport(await origin(d, b), contextFor(b, d)), 'not_vouched');
  });

  it('fail/forged-act: B claims a different earlier actor than the one that signed the origin', async () => {
    const atB = await verifyPassport(await origin(), contextFor(b, gateway));
    const forgedAct = { ...atB, act: { sub: d.id } };
    const wrapped = await wrapPassport({ svid: b.svid, audience: SpiffeId.parse(c.id), now, received: forgedAct });
    await expectRejected(() => verifyPassport(wrapped, contextFor(c, b)), 'act_mismatch');
  });

  it('fail/forged-origin: B invents an origin passport as if from the gateway, signed with its own key', async () => {
    const iat = Math.floor(now.getTime() / 1000);
    const claims = {
      iss: gateway.id,
      aud: c.id,
      iat,
      exp: iat + 30,
      jti: 'x',
      act: { sub: gateway.id },
      usr: { sub: 'root', iss: 'https://idp.test' },
      uex: iat + 30,
    };
    const thumb = thumbprintOfDer(new Uint8Array(b.leaf.rawData));
    const forged = await new SignJWT({ ...claims, cnf: { 'x5t#S256': thumb } })
      .setProtectedHeader({ alg: 'ES256', typ: PASSPORT_TYP, x5c: [Buffer.from(b.leaf.rawData).toString('base64')] })
      .sign(b.keys.privateKey);
    await expectRejected(() => verifyPassport(forged, contextFor(c, b)), 'signer_not_peer');
  });

  it('fail/untrusted-signer: an older link signed by a certificate of another CA', async () => {
    if (user === undefined) throw new Error('fixture user');
    const fake = await mintOriginPassport({ svid: foreign.svid, audience: SpiffeId.parse(b.id), now, user });
    const received = { raw: fake, origin: fake, act: { sub: foreign.id }, userExpiresAt: user.expiresAt };
    const wrapped = await wrapPassport({ svid: b.svid, audience: SpiffeId.parse(c.id), now, received });
    await expectRejected(() => verifyPassport(wrapped, contextFor(c, b)), 'untrusted_signer');
  });

  it('fail/broken-link: a link paired with another origin than the one it names', async () => {
    const atB = await verifyPassport(await origin(), contextFor(b, gateway));
    const wrapped = await wrapPassport({ svid: b.svid, audience: SpiffeId.parse(c.id), now, received: atB });
    const other = await origin();
    const [outer] = wrapped.split(',');
    await expectRejected(() => verifyPassport(`${outer},${other}`, contextFor(c, b)), 'chain_broken');
  });

  it('fail/too-deep: a chain longer than maxDepth gets MESHAUTH_ERR_PASSPORT_TOO_DEEP', async () => {
    const jws = await origin();
    const atB = verifyPassport(jws, contextFor(b, gateway));
    const atC = verifyPassport(
      wrapPassport({ svid: b.svid, audience: SpiffeId.parse(c.id), now, received: atB }),
      contextFor(c, b),
    );
    const toD = wrapPassport({ svid: c.svid, audience: SpiffeId.parse(d.id), now, received: atC });
    expect(verifyPassport(toD, contextFor(d, c)).chain).toEqual([gateway.id, b.id, c.id]);
    await expectRejected(
      () => verifyPassport(toD, contextFor(d, c, { maxDepth: 2 })),
      'too_deep',
      'MESHAUTH_ERR_PASSPORT_TOO_DEEP',
    );
  });

  it('fail/format: garbage and extra header parameters', async () => {
    await expectRejected(() => verifyPassport('not-a-jws', contextFor(b, gateway)), 'format');
    const jws = await new SignJWT({ iss: gateway.id })
      .setProtectedHeader({ alg: 'ES256', typ: PASSPORT_TYP, jku: 'https://evil.test/jwks', x5c: ['AA'] })
      .sign(gateway.keys.privateKey);
    await expectRejected(() => verifyPassport(jws, contextFor(b, gateway)), 'format');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: PASSPORT_TYP })).toString('base64url')}.${Buffer.from('{}').toString('base64url')}.`;
    await expectRejected(() => verifyPassport(none, contextFor(b, gateway)), 'format');
    await expectRejected(() => verifyPassport(jws, contextFor(b, gateway)), 'format');
  });

  it('fail/too-many-parts: more than a link and its origin', async () => {
    const jws = await origin();
    await expectRejected(() => verifyPassport([jws, jws, jws].join(','), contextFor(b, gateway)), 'format');
  });

  it('fail/link-without-origin-voucher-check: an origin from another audience chain', async () => {
    // The origin was addressed to D, but B wraps it as if it had been sent to B.
    const toD = await origin(gateway, d);
    const atD = verifyPassport(toD, contextFor(d, gateway));
    const wrapped = wrapPassport({
      svid: b.svid,
      audience: SpiffeId.parse(c.id),
      now,
      received: { ...atD, act: { sub: gateway.id } },
    });
    await expectRejected(() => verifyPassport(wrapped, contextFor(c, b)), 'act_mismatch');
  });

  it('ok/org is the SHA-256 of the origin', async () => {
    const atB = await verifyPassport(await origin(), contextFor(b, gateway));
    const wrapped = await wrapPassport({ svid: b.svid, audience: SpiffeId.parse(c.id), now, received: atB });
    const [outer, older] = wrapped.split(',');
    const claims = JSON.parse(Buffer.from((outer as string).split('.')[1] as string, 'base64url').toString());
    expect(claims.org).toBe(sha256Base64url(older as string));
    expect(claims.act).toEqual({ sub: b.id, act: { sub: gateway.id } });
    expect(claims.exp - claims.iat).toBeLessThanOrEqual(60);
  });
});
