// Property-based tests of passport and compact-JWS parsing: whatever arrives in x-meshauth-passport — random text, or
// correctly signed JWS whose header and claims hold random JSON — verifyPassport either returns a verified passport or
// throws a MeshauthError with a passport code; decodeCompact never throws at all.
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { endUserFromClaims } from '../../../src/authn/end-user.js';
import {
  decodeCompact,
  leafKeyOf,
  mintOriginPassport,
  ownOrigin,
  PASSPORT_TYP,
  type PassportVerifyContext,
  sha256Base64url,
  signCompact,
  thumbprintOfDer,
  verifyPassport,
  wrapPassport,
} from '../../../src/authn/passport/index.js';
import { signingMaterial } from '../../../src/authn/passport/signer-cache.js';
import { MeshauthError } from '../../../src/errors/index.js';
import { SpiffeId } from '../../../src/identity/index.js';
import { TestCa, type TestSvid } from '../../helpers/test-ca.js';
import { fuzzParams, fuzzTimeout } from './fuzz-settings.js';

const RUNS = 600;
const PASSPORT_CODES = ['MESHAUTH_ERR_PASSPORT_INVALID', 'MESHAUTH_ERR_PASSPORT_TOO_DEEP'];

let ca: TestCa;
let gateway: TestSvid;
let self: TestSvid;
let foreign: TestSvid;
let context: PassportVerifyContext;
let validHeader: string;
const now = new Date();
const nowSeconds = Math.floor(now.getTime() / 1000);

beforeAll(async () => {
  ca = await TestCa.create('example.org');
  const otherCa = await TestCa.create('example.org');
  gateway = await ca.issue({ id: ca.idFor('/ns/edge/sa/gateway') });
  self = await ca.issue({ id: ca.idFor('/ns/shop/sa/orders') });
  foreign = await otherCa.issue({ id: ca.idFor('/ns/edge/sa/gateway') });
  context = {
    self: SpiffeId.parse(self.id),
    peerId: SpiffeId.parse(gateway.id),
    peerThumbprint: thumbprintOfDer(new Uint8Array(gateway.leaf.rawData)),
    peerKey: leafKeyOf(Buffer.from(gateway.leaf.rawData).toString('base64')).key,
    bundle: ca.bundle,
    vouchers: new Set([gateway.id]),
    claims: ['scope', 'groups'],
    now,
  };
  const user = endUserFromClaims({ sub: 'alice', iss: 'https://idp.test', scope: 'read', exp: nowSeconds + 600 }, [
    'scope',
  ]);
  if (user === undefined) throw new Error('fixture user');
  const origin = ownOrigin(
    mintOriginPassport({ svid: gateway.svid, now, user }),
    SpiffeId.parse(gateway.id),
    nowSeconds + 600,
  );
  validHeader = wrapPassport({ svid: gateway.svid, audience: SpiffeId.parse(self.id), now, received: origin });
});

function outcome(value: string): 'ok' | string {
  try {
    verifyPassport(value, context);
    return 'ok';
  } catch (error) {
    if (!(error instanceof MeshauthError)) throw error;
    expect(PASSPORT_CODES).toContain(error.code);
    expect(error.reason).toBeTypeOf('string');
    return error.code;
  }
}

const b64chars = fc.constantFrom(...'ABCxyz019-_.,=+/ \n'.split(''), 'eyJ', 'e30', 'W10', 'bnVsbA');
const noise = fc.array(b64chars, { maxLength: 60 }).map((a) => a.join(''));

/** Random JSON, including the shapes claim checks trip over: nulls, arrays, deep nesting, huge numbers. */
const json = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.constantFrom(null, [], {}, '', 0, -1, 1e308, Number.MAX_SAFE_INTEGER + 2, true) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1, max: 300 }).map((depth) => {
      let act: Record<string, unknown> = { sub: 'spiffe://example.org/ns/edge/sa/gateway' };
      for (let i = 0; i < depth; i++) act = { sub: 'spiffe://example.org/x', act };
      return act;
    }),
  },
);

type Claims = Record<string, unknown>;

/** Replaces some fields of `base` with random JSON (or deletes them); adds a few unknown fields. */
function mutate(base: Claims): fc.Arbitrary<Claims> {
  const keys = Object.keys(base);
  return fc
    .tuple(
      fc.array(fc.tuple(fc.constantFrom(...keys, '__proto__', 'constructor', 'extra'), fc.option(json)), {
        minLength: 1,
        maxLength: 3,
      }),
    )
    .map(([edits]) => {
      const out: Claims = { ...base };
      for (const [key, value] of edits) {
        if (value === null) delete out[key];
        else Object.defineProperty(out, key, { value, enumerable: true, configurable: true, writable: true });
      }
      return out;
    });
}

function decodePart(jws: string, index: number): Claims {
  return JSON.parse(Buffer.from(jws.split('.')[index] as string, 'base64url').toString('utf8')) as Claims;
}

describe('passport parsing (property)', () => {
  it(
    'ok/decodeCompact never throws and verifyPassport throws only passport MeshauthErrors for random text',
    () => {
      fc.assert(
        fc.property(fc.oneof(noise, fc.string({ unit: 'binary', maxLength: 80 })), (value) => {
          expect(() => decodeCompact(value, new Set(['alg', 'typ']))).not.toThrow();
          expect(outcome(value)).not.toBe('ok');
          expect(outcome(`${value},${value}`)).not.toBe('ok');
        }),
        fuzzParams(RUNS),
      );
    },
    fuzzTimeout(RUNS),
  );

  it('ok/the unmodified fixture verifies (so the mutations below start from a valid passport)', () => {
    expect(outcome(validHeader)).toBe('ok');
  });

  it(
    'ok/correctly signed links and origins with random header parameters and claims never escape as another error',
    () => {
      const [link, origin] = validHeader.split(',') as [string, string];
      const linkClaims = decodePart(link, 1);
      const originClaims = decodePart(origin, 1);
      const originHeader = decodePart(origin, 0);
      const material = signingMaterial(gateway.svid);
      const foreignMaterial = signingMaterial(foreign.svid);
      const x5c = fc.oneof(
        fc.constant(originHeader.x5c),
        fc.constant(foreignMaterial.x5c),
        fc.array(fc.oneof(fc.string({ maxLength: 8 }), fc.constant('MIIB'), json), { maxLength: 5 }),
        json,
      );
      const header = fc.record(
        { typ: fc.oneof(fc.constant(PASSPORT_TYP), json), x5c, kid: json },
        { requiredKeys: ['typ'] },
      );
      fc.assert(
        fc.property(
          fc.oneof(
            // The link's claims mutated, the origin intact.
            mutate(linkClaims).map((claims) => [claims, originClaims, originHeader] as const),
            // The origin's claims and header mutated; the link names the new origin so the chain check passes.
            fc.tuple(mutate(originClaims), header).map(([claims, h]) => [linkClaims, claims, h] as const),
            fc.tuple(mutate(linkClaims), mutate(originClaims)).map(([l, o]) => [l, o, originHeader] as const),
          ),
          ([lc, oc, oh]) => {
            const newOrigin = signCompact(oh, oc, material.key, material.algorithm);
            const linkPayload = { ...lc, org: lc.org === linkClaims.org ? sha256Base64url(newOrigin) : lc.org };
            const newLink = signCompact({ typ: PASSPORT_TYP }, linkPayload, material.key, material.algorithm);
            outcome(`${newLink},${newOrigin}`);
          },
        ),
        fuzzParams(RUNS),
      );
    },
    fuzzTimeout(RUNS, 3),
  );

  it('fail/a signature over other bytes is refused whatever the claims say', () => {
    const [link, origin] = validHeader.split(',') as [string, string];
    const [h, p] = link.split('.') as [string, string, string];
    const forged = `${h}.${p}.${createHash('sha256').update('x').digest('base64url')}`;
    expect(outcome(`${forged},${origin}`)).toBe('MESHAUTH_ERR_PASSPORT_INVALID');
  });
});
