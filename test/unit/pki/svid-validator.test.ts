// checkSvidLeaf / validateX509Svid (X509-SVID §4, §5) with real certificates from the test CA.
import { beforeAll, describe, expect, it } from 'vitest';
import { MeshauthError } from '../../../src/errors/index.js';
import { TrustDomain } from '../../../src/identity/index.js';
import { checkSvidLeaf, TrustBundle, validateX509Svid, validateX509SvidDer, x509 } from '../../../src/pki/index.js';
import { plainLeafFacts } from '../../../src/pki/leaf-der.js';
import { type IssueOptions, TestCa } from '../../helpers/test-ca.js';

const HOUR = 3_600_000;
let ca: TestCa;
let otherCa: TestCa;
let otherTdCa: TestCa;

beforeAll(async () => {
  [ca, otherCa, otherTdCa] = await Promise.all([
    TestCa.create('example.org'),
    TestCa.create('example.org'),
    TestCa.create('other.org'),
  ]);
});

type Case = [
  name: string,
  issuer: () => TestCa,
  options: () => IssueOptions,
  code: string | null,
  reason: string | null,
];

const now = new Date();
const cases: Case[] = [
  ['ok/valid SVID', () => ca, () => ({}), null, null],
  ['ok/rsa2048 leaf', () => ca, () => ({ keyType: 'rsa2048' }), null, null],
  ['ok/ed25519 leaf', () => ca, () => ({ keyType: 'ed25519' }), null, null],
  ['ok/no EKU at all (EKU is a SHOULD)', () => ca, () => ({ defects: { extKeyUsage: null } }), null, null],
  [
    'fail/expired',
    () => ca,
    () => ({ notBefore: new Date(now.getTime() - 2 * HOUR), notAfter: new Date(now.getTime() - HOUR) }),
    'MESHAUTH_ERR_SVID_EXPIRED',
    'expired',
  ],
  [
    'fail/not yet valid',
    () => ca,
    () => ({ notBefore: new Date(now.getTime() + HOUR), notAfter: new Date(now.getTime() + 2 * HOUR) }),
    'MESHAUTH_ERR_SVID_NOT_YET_VALID',
    'not_yet_valid',
  ],
  ['fail/unknown CA (same trust domain)', () => otherCa, () => ({}), 'MESHAUTH_ERR_SVID_UNKNOWN_CA', 'unknown_ca'],
  [
    'fail/other trust domain',
    () => otherTdCa,
    () => ({ id: 'spiffe://other.org/ns/a/sa/b' }),
    'MESHAUTH_ERR_SVID_TRUST_DOMAIN',
    'trust_domain',
  ],
  [
    'fail/two URI SANs',
    () => ca,
    () => ({ defects: { uris: ['spiffe://example.org/ns/a/sa/b', 'spiffe://example.org/ns/c/sa/d'] } }),
    'MESHAUTH_ERR_SVID_MULTIPLE_URI_SAN',
    'multiple_uri_san',
  ],
  [
    'fail/no URI SAN (DNS only)',
    () => ca,
    () => ({ defects: { uris: [], dnsNames: ['spiffe.example.org'] } }),
    'MESHAUTH_ERR_SVID_NO_URI_SAN',
    'no_uri_san',
  ],
  ['fail/CA leaf', () => ca, () => ({ defects: { isCa: true } }), 'MESHAUTH_ERR_SVID_LEAF_IS_CA', 'leaf_is_ca'],
  [
    'fail/keyCertSign',
    () => ca,
    () => ({ defects: { keyUsage: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign } }),
    'MESHAUTH_ERR_SVID_KEY_USAGE',
    'bad_key_usage',
  ],
  [
    'fail/cRLSign',
    () => ca,
    () => ({ defects: { keyUsage: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.cRLSign } }),
    'MESHAUTH_ERR_SVID_KEY_USAGE',
    'bad_key_usage',
  ],
  [
    'fail/no digitalSignature',
    () => ca,
    () => ({ defects: { keyUsage: x509.KeyUsageFlags.keyEncipherment } }),
    'MESHAUTH_ERR_SVID_KEY_USAGE',
    'bad_key_usage',
  ],
  [
    'fail/key usage not critical',
    () => ca,
    () => ({ defects: { keyUsageCritical: false } }),
    'MESHAUTH_ERR_SVID_KEY_USAGE',
    'bad_key_usage',
  ],
  [
    'fail/no key usage',
    () => ca,
    () => ({ defects: { keyUsage: null } }),
    'MESHAUTH_ERR_SVID_KEY_USAGE',
    'bad_key_usage',
  ],
  [
    'fail/EKU without clientAuth',
    () => ca,
    () => ({ defects: { extKeyUsage: [x509.ExtendedKeyUsage.serverAuth] } }),
    'MESHAUTH_ERR_SVID_EXT_KEY_USAGE',
    'bad_ext_key_usage',
  ],
  [
    'fail/EKU without serverAuth',
    () => ca,
    () => ({ defects: { extKeyUsage: [x509.ExtendedKeyUsage.clientAuth, x509.ExtendedKeyUsage.emailProtection] } }),
    'MESHAUTH_ERR_SVID_EXT_KEY_USAGE',
    'bad_ext_key_usage',
  ],
  [
    'fail/URI SAN is not a valid SPIFFE ID',
    () => ca,
    () => ({ defects: { uris: ['SPIFFE://example.org/ns/a/sa/b'] } }),
    'MESHAUTH_ERR_SPIFFE_ID_INVALID',
    'invalid_spiffe_id',
  ],
  [
    'fail/leaf with the trust-domain ID',
    () => ca,
    () => ({ defects: { uris: ['spiffe://example.org'] } }),
    'MESHAUTH_ERR_SPIFFE_ID_INVALID',
    'root_id_leaf',
  ],
];

function outcome(run: () => unknown): { code: string | null; reason: string | null; id?: string } {
  try {
    const id = run();
    return { code: null, reason: null, id: String(id) };
  } catch (error) {
    expect(error).toBeInstanceOf(MeshauthError);
    return { code: (error as MeshauthError).code, reason: (error as MeshauthError).reason ?? null };
  }
}

describe('validateX509Svid (leaf rules + path to the bundle)', () => {
  it.each(cases)('%s', async (_name, issuer, options, code, reason) => {
    const svid = await issuer().issue(options());
    const result = outcome(() => validateX509Svid(svid.svid.certificates, ca.bundle, new Date()));
    expect({ code: result.code, reason: result.reason }).toEqual({ code, reason });
    if (code === null) expect(result.id).toBe(svid.id);
  });

  it('fail/leaf of another trust domain signed by our intermediate violates its name constraints', async () => {
    // The leaf rules would reject it for its trust domain first; the bundle of *its* trust domain isolates the
    // name-constraints check of the path validation.
    const svid = await ca.issue({ id: 'spiffe://evil.org/ns/a/sa/b' });
    const evilBundle = new TrustBundle(TrustDomain.parse('evil.org'), ca.bundle.roots);
    const result = outcome(() => validateX509Svid(svid.svid.certificates, evilBundle, new Date()));
    expect(result).toEqual({ code: 'MESHAUTH_ERR_SVID_CHAIN', reason: 'name_constraints' });
  });

  it('fail/leaf without its intermediate does not reach the root', async () => {
    const svid = await ca.issue();
    const result = outcome(() => validateX509Svid([svid.leaf], ca.bundle, new Date()));
    expect(result).toEqual({ code: 'MESHAUTH_ERR_SVID_UNKNOWN_CA', reason: 'unknown_ca' });
  });

  it('fail/empty chain', () => {
    expect(outcome(() => validateX509Svid([], ca.bundle, new Date()))).toEqual({
      code: 'MESHAUTH_ERR_SVID_CHAIN',
      reason: 'empty_chain',
    });
  });
});

// The CA's renewal path reads the leaf's facts from its DER (leaf-der.ts) when the leaf has meshauth's plain
// shape: every case must end exactly as with the parsed certificate, and the plain cases must take that path.
describe('validateX509SvidDer (leaf as DER, the CA renewal path)', () => {
  const direct = new Set<string>();
  it.each(cases)('%s', async (name, issuer, options, code, reason) => {
    const svid = await issuer().issue(options());
    const [leaf, ...issuers] = svid.svid.certificates as [x509.X509Certificate, ...x509.X509Certificate[]];
    const der = new Uint8Array(leaf.rawData);
    if (plainLeafFacts(der, issuers) !== undefined) direct.add(name);
    const result = outcome(() => validateX509SvidDer(der, issuers, ca.bundle, new Date()));
    expect({ code: result.code, reason: result.reason }).toEqual({ code, reason });
    if (code === null) expect(result.id).toBe(svid.id);
  });

  it('ok/the plain leaves meshauth issues are read from their DER, not parsed', () => {
    expect(direct.has('ok/valid SVID')).toBe(true);
    expect(direct.has('ok/ed25519 leaf')).toBe(true);
    expect(direct.has('fail/expired')).toBe(true);
    expect(direct.has('fail/other trust domain')).toBe(true);
  });

  it('fail/name constraints and a missing intermediate are caught on the DER path too', async () => {
    const evil = await ca.issue({ id: 'spiffe://evil.org/ns/a/sa/b' });
    const [evilLeaf, ...evilIssuers] = evil.svid.certificates as [x509.X509Certificate, ...x509.X509Certificate[]];
    const evilBundle = new TrustBundle(TrustDomain.parse('evil.org'), ca.bundle.roots);
    expect(
      outcome(() => validateX509SvidDer(new Uint8Array(evilLeaf.rawData), evilIssuers, evilBundle, new Date())),
    ).toEqual({ code: 'MESHAUTH_ERR_SVID_CHAIN', reason: 'name_constraints' });
    const svid = await ca.issue();
    expect(outcome(() => validateX509SvidDer(new Uint8Array(svid.leaf.rawData), [], ca.bundle, new Date()))).toEqual({
      code: 'MESHAUTH_ERR_SVID_UNKNOWN_CA',
      reason: 'unknown_ca',
    });
  });

  it('fail/a leaf whose signature was altered does not chain on the DER path', async () => {
    const svid = await ca.issue();
    const [leaf, ...issuers] = svid.svid.certificates as [x509.X509Certificate, ...x509.X509Certificate[]];
    const der = new Uint8Array(leaf.rawData);
    der[der.length - 1] = (der[der.length - 1] as number) ^ 0x01;
    expect(outcome(() => validateX509SvidDer(der, issuers, ca.bundle, new Date()))).toEqual({
      code: 'MESHAUTH_ERR_SVID_UNKNOWN_CA',
      reason: 'unknown_ca',
    });
  });

  it('fail/bytes that are no certificate are malformed on the DER path', () => {
    expect(
      outcome(() => validateX509SvidDer(new Uint8Array([0x30, 0x03, 1, 2, 3]), [], ca.bundle, new Date())),
    ).toEqual({ code: 'MESHAUTH_ERR_SVID_MALFORMED', reason: 'malformed' });
  });
});

describe('checkSvidLeaf (leaf rules only)', () => {
  it.each(cases.filter(([name]) => !name.includes('unknown CA')))(
    '%s',
    async (_name, issuer, options, code, reason) => {
      const svid = await issuer().issue(options());
      const result = outcome(() => checkSvidLeaf(svid.leaf, ca.trustDomain, new Date()));
      expect({ code: result.code, reason: result.reason }).toEqual({ code, reason });
    },
  );

  it('ok/a leaf of another CA passes the leaf rules (the TLS handshake checked the chain)', async () => {
    const svid = await otherCa.issue();
    expect(checkSvidLeaf(svid.leaf, ca.trustDomain, new Date()).toString()).toBe(svid.id);
  });
});
