// Adversarial review of src/authn/passport: replay, audience, origin reuse, act-chain forgery, expiry arithmetic, the
// verification caches and hostile JSON.
import { createPrivateKey, sign } from 'node:crypto';
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
  thumbprintOfDer,
  verifyPassport,
  wrapPassport,
} from '../../../src/authn/passport/index.js';
import { isMeshauthError } from '../../../src/errors/index.js';
import { SpiffeId, TrustDomain } from '../../../src/identity/index.js';
import { TrustBundle } from '../../../src/pki/index.js';
import { TestCa, type TestSvid } from '../../helpers/test-ca.js';

let ca: TestCa;
let otherCa: TestCa;
let gateway: TestSvid;
let b: TestSvid;
let c: TestSvid;
let shortLivedGateway: TestSvid;
const now = new Date();
const nowS = Math.floor(now.getTime() / 1000);
const userExpiresAt = nowS + 600;
const user = endUserFromClaims({ sub: 'alice', iss: 'https://idp.test', scope: 'orders:read', exp: userExpiresAt }, [
  'scope',
]);

beforeAll(async () => {
  ca = await TestCa.create('example.org');
  otherCa = await TestCa.create('example.org');
  gateway = await ca.issue({ id: ca.idFor('/ns/edge/sa/gateway') });
  b = await ca.issue({ id: ca.idFor('/ns/shop/sa/orders') });
  c = await ca.issue({ id: ca.idFor('/ns/shop/sa/payments') });
  shortLivedGateway = await ca.issue({
    id: ca.idFor('/ns/edge/sa/gateway'),
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + 10_000),
  });
});

const b64der = (svid: TestSvid): string => Buffer.from(svid.leaf.rawData).toString('base64');
const id = (svid: TestSvid): SpiffeId => SpiffeId.parse(svid.id);

function contextFor(self: TestSvid, peer: TestSvid, overrides: Partial<PassportVerifyContext> = {}) {
  return {
    self: id(self),
    peerId: id(peer),
    peerThumbprint: thumbprintOfDer(new Uint8Array(peer.leaf.rawData)),
    peerKey: leafKeyOf(b64der(peer)).key,
    bundle: ca.bundle,
    vouchers: new Set([gateway.id]),
    claims: ['scope'],
    now,
    ...overrides,
  } satisfies PassportVerifyContext;
}

function originOf(voucher = gateway, at = now): ReceivedPassport {
  if (user === undefined) throw new Error('fixture user');
  return ownOrigin(mintOriginPassport({ svid: voucher.svid, now: at, user }), id(voucher), userExpiresAt);
}

function reasonOf(run: () => unknown): string {
  try {
    run();
    return 'ok';
  } catch (error) {
    if (isMeshauthError(error)) return `${error.code.replace('MESHAUTH_ERR_', '')}:${error.reason ?? ''}`;
    return `non-meshauth ${(error as Error).name}: ${(error as Error).message}`;
  }
}

/** A compact ES256 JWS over a payload given as JSON text (to keep literals such as 1e309 JSON.stringify can't). */
function signText(signer: TestSvid, header: Record<string, unknown>, payloadText: string): string {
  const input = `${Buffer.from(JSON.stringify({ ...header, alg: 'ES256' })).toString('base64url')}.${Buffer.from(payloadText).toString('base64url')}`;
  const signature = sign('sha256', Buffer.from(input), {
    key: createPrivateKey(signer.keyPem),
    dsaEncoding: 'ieee-p1363',
  });
  return `${input}.${signature.toString('base64url')}`;
}

/** A link from `signer` carrying any claims (a compromised but authenticated peer can sign what it likes). */
function rawLink(signer: TestSvid, claims: Record<string, unknown>, origin: string): string {
  const body = {
    iss: signer.id,
    aud: b.id,
    iat: nowS,
    exp: nowS + 30,
    jti: 'j',
    cnf: { 'x5t#S256': thumbprintOfDer(new Uint8Array(signer.leaf.rawData)) },
    act: { sub: signer.id, act: { sub: gateway.id } },
    org: sha256Base64url(origin),
    ...claims,
  };
  const text = JSON.stringify(body).replace('"__INF__"', '1e309');
  return `${signText(signer, { typ: PASSPORT_TYP }, text)},${origin}`;
}

describe('review/passport: the origin cache never outlives the context it was verified in', () => {
  it('fail/an origin verified under one bundle is not trusted under a bundle without its root', () => {
    const origin = originOf();
    const wire = wrapPassport({ svid: gateway.svid, audience: id(b), now, received: origin });
    expect(reasonOf(() => verifyPassport(wire, contextFor(b, gateway)))).toBe('ok');
    // Same trust domain name, other root: a rotated bundle that dropped a compromised root, or another mesh.
    const rotated = new TrustBundle(TrustDomain.parse('example.org'), otherCa.bundle.roots);
    expect(reasonOf(() => verifyPassport(wire, contextFor(b, gateway, { bundle: rotated })))).toBe(
      'PASSPORT_INVALID:untrusted_signer',
    );
  });

  it('fail/a cached origin whose signer certificate has since expired is re-checked', () => {
    const origin = originOf(shortLivedGateway);
    const wire = wrapPassport({ svid: shortLivedGateway.svid, audience: id(b), now, received: origin });
    const ctx = contextFor(b, shortLivedGateway, { vouchers: new Set([shortLivedGateway.id]) });
    expect(reasonOf(() => verifyPassport(wire, ctx))).toBe('ok');
    const later = new Date(now.getTime() + 15_000); // link and origin still fresh; the gateway cert is not
    expect(reasonOf(() => verifyPassport(wire, { ...ctx, now: later }))).toBe('PASSPORT_INVALID:untrusted_signer');
  });

  it('fail/a link backdated before its origin was minted is refused, whether or not the origin is cached', () => {
    const hop = (origin: string, claims: Record<string, unknown> = {}) =>
      rawLink(b, { aud: c.id, act: { sub: b.id, act: { sub: gateway.id } }, ...claims }, origin);
    const backdated = { iat: nowS - 40, exp: nowS + 10 };
    const cold = originOf().origin;
    expect(reasonOf(() => verifyPassport(hop(cold, backdated), contextFor(c, b)))).toBe('PASSPORT_INVALID:expired');
    const warm = originOf().origin;
    expect(reasonOf(() => verifyPassport(hop(warm), contextFor(c, b)))).toBe('ok');
    expect(reasonOf(() => verifyPassport(hop(warm, backdated), contextFor(c, b)))).toBe('PASSPORT_INVALID:expired');
  });

  it('fail/vouchers and exposed claims come from the current context, not from the cache', () => {
    const wire = wrapPassport({ svid: gateway.svid, audience: id(b), now, received: originOf() });
    expect(verifyPassport(wire, contextFor(b, gateway)).user.exposed).toHaveProperty('scope');
    expect(verifyPassport(wire, contextFor(b, gateway, { claims: [] })).user.exposed).not.toHaveProperty('scope');
    expect(reasonOf(() => verifyPassport(wire, contextFor(b, gateway, { vouchers: new Set() })))).toBe(
      'PASSPORT_INVALID:not_vouched',
    );
  });
});

describe('review/passport: hostile origins and links from an authenticated peer', () => {
  /** How C answers an origin of the gateway's whose header carries `x5c` of the real one's (signature unchanged). */
  function reasonForOriginX5c(x5c: (real: readonly string[]) => string[]): string {
    if (user === undefined) throw new Error('fixture user');
    const [encodedHeader, payload, signature] = mintOriginPassport({ svid: gateway.svid, now, user }).split('.');
    const header = JSON.parse(Buffer.from(encodedHeader as string, 'base64url').toString('utf8'));
    const forged = Buffer.from(JSON.stringify({ ...header, x5c: x5c(header.x5c) })).toString('base64url');
    const wire = wrapPassport({
      svid: b.svid,
      audience: id(c),
      now,
      received: { raw: 'x', origin: `${forged}.${payload}.${signature}`, act: { sub: gateway.id }, userExpiresAt },
    });
    return reasonOf(() => verifyPassport(wire, contextFor(c, b)));
  }

  it('fail/an origin whose x5c leaf is not a certificate is a passport rejection, not a crash', () => {
    expect(reasonForOriginX5c(() => ['AAAA'])).toBe('PASSPORT_INVALID:untrusted_signer');
  });

  it('fail/an origin whose x5c intermediate is not a certificate is a passport rejection, not a crash', () => {
    expect(reasonForOriginX5c((real) => [real[0] as string, 'AAAA'])).toBe('PASSPORT_INVALID:untrusted_signer');
  });

  const hostileLinks: ReadonlyArray<readonly [string, () => Record<string, unknown>, string]> = [
    ['fail/link lifetime above 60 s', () => ({ exp: nowS + 61 }), 'PASSPORT_INVALID:lifetime'],
    ['fail/exp 1e309 (Infinity after JSON.parse)', () => ({ exp: '__INF__' }), 'PASSPORT_INVALID:lifetime'],
    ['fail/iat and exp both huge', () => ({ iat: 1e300, exp: 1e300 }), 'PASSPORT_INVALID:expired'],
    ['fail/iat in the future', () => ({ iat: nowS + 30, exp: nowS + 60 }), 'PASSPORT_INVALID:expired'],
    ['fail/exp as a string', () => ({ exp: String(nowS + 30) }), 'PASSPORT_INVALID:format'],
    ['fail/aud as an array containing us', () => ({ aud: [b.id] }), 'PASSPORT_INVALID:audience'],
    ['fail/aud another hop', () => ({ aud: gateway.id }), 'PASSPORT_INVALID:audience'],
    ['fail/act.sub not the signer', () => ({ act: { sub: gateway.id } }), 'PASSPORT_INVALID:act_mismatch'],
    [
      'fail/act chain not starting at the origin',
      () => ({ act: { sub: c.id, act: { sub: b.id } } }),
      'PASSPORT_INVALID:act_mismatch',
    ],
    [
      'fail/act with a non-SPIFFE hop',
      () => ({ act: { sub: c.id, act: { sub: 'root' } } }),
      'PASSPORT_INVALID:act_mismatch',
    ],
    ['fail/act as a string', () => ({ act: c.id }), 'PASSPORT_INVALID:act_mismatch'],
    ['fail/cnf of another certificate', () => ({ cnf: { 'x5t#S256': 'AAAA' } }), 'PASSPORT_INVALID:cnf_mismatch'],
    ['fail/iss not the signer', () => ({ iss: gateway.id }), 'PASSPORT_INVALID:signer_not_peer'],
    ['fail/no org', () => ({ org: undefined }), 'PASSPORT_INVALID:chain_broken'],
  ];
  it.each(hostileLinks)('%s', (_n, claims, expected) => {
    const wire = rawLink(
      c,
      { aud: b.id, act: { sub: c.id, act: { sub: gateway.id } }, ...claims() },
      originOf().origin,
    );
    expect(reasonOf(() => verifyPassport(wire, contextFor(b, c)))).toBe(expected);
  });

  it('ok/a compromised hop can only speak for itself: the peer is always the last hop, the voucher the first', () => {
    const origin = originOf().origin;
    const wire = rawLink(c, { aud: b.id, act: { sub: c.id, act: { sub: gateway.id } } }, origin);
    const verified = verifyPassport(wire, contextFor(b, c));
    expect(verified.chain[0]).toBe(gateway.id);
    expect(verified.chain.at(-1)).toBe(c.id);
  });

  it('fail/an origin older than the link by more than its lifetime cannot be rewrapped', () => {
    const old = originOf(gateway, new Date(now.getTime() - 50_000)).origin;
    const wire = rawLink(c, { aud: b.id, act: { sub: c.id, act: { sub: gateway.id } } }, old);
    expect(reasonOf(() => verifyPassport(wire, contextFor(b, c)))).toBe('PASSPORT_INVALID:expired');
  });

  it('fail/__proto__ in the origin user claims never becomes a prototype of the verified user', () => {
    const iat = nowS;
    const x5c = [b64der(gateway), Buffer.from(ca.intermediate.rawData).toString('base64')];
    const thumbprint = thumbprintOfDer(new Uint8Array(gateway.leaf.rawData));
    const payload = `{"iss":"${gateway.id}","aud":"${gateway.id}","iat":${iat},"exp":${iat + 30},"jti":"j","cnf":{"x5t#S256":"${thumbprint}"},"act":{"sub":"${gateway.id}"},"usr":{"sub":"alice","iss":"https://idp.test","__proto__":{"scope":"admin"}},"uex":${iat + 300}}`;
    const origin = signText(gateway, { typ: PASSPORT_TYP, x5c }, payload);
    const wire = wrapPassport({
      svid: gateway.svid,
      audience: id(b),
      now,
      received: ownOrigin(origin, id(gateway), iat + 300),
    });
    const verified = verifyPassport(wire, contextFor(b, gateway));
    expect(verified.user.claims.scope).toBeUndefined();
    expect(Object.getPrototypeOf(verified.user.claims)).toBe(Object.prototype);
  });

  it('fail/the passport header with surrounding spaces or a third JWS is refused as a whole', () => {
    const wire = wrapPassport({ svid: gateway.svid, audience: id(b), now, received: originOf() });
    const [link, origin] = wire.split(',');
    expect(reasonOf(() => verifyPassport(`${link}, ${origin}`, contextFor(b, gateway)))).toBe(
      'PASSPORT_INVALID:chain_broken',
    );
    expect(reasonOf(() => verifyPassport(`${wire},${origin}`, contextFor(b, gateway)))).toBe('PASSPORT_INVALID:format');
    expect(reasonOf(() => verifyPassport(`${wire}${'A'.repeat(17_000)}`, contextFor(b, gateway)))).toBe(
      'PASSPORT_INVALID:too_large',
    );
  });
});
