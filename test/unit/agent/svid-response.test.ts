import { KeyObject } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { acceptSvidResponse, parseBundle } from '../../../src/agent/svid-response.js';
import { isMeshauthError } from '../../../src/errors/index.js';
import { SpiffeId, TrustDomain } from '../../../src/identity/index.js';
import { generateKeyPair, type KeyPair } from '../../../src/pki/index.js';
import { TestCa, type TestSvid } from '../../helpers/test-ca.js';

const td = TrustDomain.parse('example.org');
const ID = 'spiffe://example.org/ns/shop/sa/orders';

let ca: TestCa;
let otherCa: TestCa;
let otherTdCa: TestCa;
let good: TestSvid;
let otherKey: KeyPair;

beforeAll(async () => {
  [ca, otherCa, otherTdCa] = await Promise.all([TestCa.create(), TestCa.create(), TestCa.create('other.org')]);
  good = await ca.issue({ id: ID, ttlMs: 60_000 });
  otherKey = await generateKeyPair('p256');
});

function response(svid: TestSvid, bundle: TestCa = ca) {
  return { certChainPem: [svid.certPem, svid.chainPem.slice(svid.certPem.length)], bundlePem: [bundle.rootPem] };
}

function accept(
  resp: { certChainPem: string[]; bundlePem: string[] },
  keys: KeyPair,
  extra: { expectedId?: SpiffeId; now?: Date; spkiDer?: Uint8Array } = {},
) {
  return acceptSvidResponse(resp, {
    trustDomain: td,
    publicKey: keys.publicKey,
    privateKeyPem: 'unused-in-validation',
    keyType: 'p256',
    now: extra.now ?? new Date(),
    ...(extra.expectedId === undefined ? {} : { expectedId: extra.expectedId }),
    ...(extra.spkiDer === undefined ? {} : { spkiDer: extra.spkiDer }),
  });
}

/** Our key's SPKI DER, as the agent carries it from its CSR. */
const spkiOf = (keys: KeyPair) => KeyObject.from(keys.publicKey).export({ type: 'spki', format: 'der' });

function reasonOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    if (isMeshauthError(error, 'MESHAUTH_ERR_CA_RESPONSE_INVALID')) return error.reason;
    throw error;
  }
  return 'accepted';
}

describe('acceptSvidResponse', () => {
  it('ok/bootstrap-response-becomes-credentials', () => {
    const credentials = accept(response(good), good.keys);
    expect(credentials.svid.id.toString()).toBe(ID);
    expect(credentials.svid.certificates).toHaveLength(2);
    expect(credentials.bundle.roots).toHaveLength(1);
    expect(credentials.bundle.hasRoot(ca.root)).toBe(true);
    expect(credentials.svid.privateKeyPem).toBe('unused-in-validation');
  });

  it('ok/renewal-with-the-same-id', () => {
    const credentials = accept(response(good), good.keys, { expectedId: SpiffeId.parse(ID) });
    expect(credentials.svid.id.equals(SpiffeId.parse(ID))).toBe(true);
  });

  it('ok/root-appended-to-the-chain-is-dropped', () => {
    const resp = response(good);
    const credentials = accept({ ...resp, certChainPem: [...resp.certChainPem, ca.rootPem] }, good.keys);
    expect(credentials.svid.certificates).toHaveLength(2);
  });

  it('ok/bundle-with-several-roots', () => {
    const credentials = accept({ ...response(good), bundlePem: [otherCa.rootPem, ca.rootPem] }, good.keys);
    expect(credentials.bundle.roots).toHaveLength(2);
  });

  it('ok/chain-as-one-pem-string', () => {
    const credentials = accept({ certChainPem: [good.chainPem], bundlePem: [ca.bundlePem] }, good.keys);
    expect(credentials.svid.certificates).toHaveLength(2);
  });

  it('ok/our key recognised by the SPKI bytes of our CSR', () => {
    const credentials = accept(response(good), good.keys, { spkiDer: spkiOf(good.keys) });
    expect(credentials.svid.id.toString()).toBe(ID);
  });

  it.each([
    ['fail/wrong-key', async () => accept(response(good), otherKey), 'wrong_key'],
    [
      'fail/wrong-key, our SPKI bytes given',
      async () => accept(response(good), otherKey, { spkiDer: spkiOf(otherKey) }),
      'wrong_key',
    ],
    [
      'fail/id-changed-on-renewal',
      async () => accept(response(good), good.keys, { expectedId: SpiffeId.parse(`${ID}x`) }),
      'id_changed',
    ],
    ['fail/chain-not-to-bundle', async () => accept(response(good, otherCa), good.keys), 'unknown_ca'],
    [
      'fail/other-trust-domain',
      async () => {
        const foreign = await otherTdCa.issue({ id: 'spiffe://other.org/ns/shop/sa/orders' });
        return accept(response(foreign, otherTdCa), foreign.keys);
      },
      'trust_domain',
    ],
    [
      'fail/expired',
      async () => {
        const expired = await ca.issue({
          id: ID,
          notBefore: new Date(Date.now() - 120_000),
          notAfter: new Date(Date.now() - 60_000),
        });
        return accept(response(expired), expired.keys);
      },
      'expired',
    ],
    [
      'fail/not-yet-valid',
      async () => accept(response(good), good.keys, { now: new Date(good.leaf.notBefore.getTime() - 1_000) }),
      'not_yet_valid',
    ],
    [
      'fail/leaf-is-ca',
      async () => {
        const caLeaf = await ca.issue({ id: ID, defects: { isCa: true } });
        return accept(response(caLeaf), caLeaf.keys);
      },
      'leaf_is_ca',
    ],
    [
      'fail/two-uri-sans',
      async () => {
        const two = await ca.issue({ id: ID, defects: { uris: [ID, `${ID}2`] } });
        return accept(response(two), two.keys);
      },
      'multiple_uri_san',
    ],
    [
      'fail/garbage-pem',
      async () => accept({ certChainPem: ['not a pem'], bundlePem: [ca.rootPem] }, good.keys),
      'no_certificate',
    ],
    [
      'fail/garbage-bundle',
      async () => accept({ ...response(good), bundlePem: ['nope'] }, good.keys),
      'no_certificate',
    ],
  ])('%s', async (_name, run, expected) => {
    let reason: string | undefined = 'accepted';
    try {
      await run();
    } catch (error) {
      if (!isMeshauthError(error, 'MESHAUTH_ERR_CA_RESPONSE_INVALID')) throw error;
      reason = error.reason;
    }
    expect(reason).toBe(expected);
  });
});

describe('parseBundle', () => {
  it('ok/several-roots', () => {
    expect(parseBundle(td, [ca.rootPem, otherCa.rootPem]).roots).toHaveLength(2);
  });

  it('fail/empty', () => {
    expect(reasonOf(() => parseBundle(td, []))).toBe('empty_bundle');
  });
});
