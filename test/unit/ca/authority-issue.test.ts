// CaAuthority.issue and the signing pool answer with a leaf written as DER and PEM-encoded without a parse: the PEM,
// serial and expiry they report must be exactly what the certificate says (the leaf object is parsed only on use).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaAuthority } from '../../../src/ca/authority.js';
import { SigningPool } from '../../../src/ca/signing-pool.js';
import { initCa } from '../../../src/ca/store.js';
import { SpiffeId, TrustDomain } from '../../../src/identity/index.js';
import { createCsrPem, generateKeyPair, validateX509Svid, verifyCsrPem, x509 } from '../../../src/pki/index.js';
import { createLogger } from '../../../src/telemetry/index.js';

let dir: string;
let authority: CaAuthority;
let pool: SigningPool;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshauth-authority-'));
  await initCa({ dir, trustDomain: TrustDomain.parse('example.org') });
  authority = await CaAuthority.open(dir, createLogger({ level: 'silent' }));
  pool = SigningPool.start(dir, authority, 1);
});

afterAll(async () => {
  await pool.close();
  await rm(dir, { recursive: true, force: true });
});

describe('issued SVID without a parse', () => {
  it.each([
    ['ok/in-thread, SPKI bytes from a CSR', 'thread', 'p256'],
    ['ok/signing worker, SPKI bytes from a CSR', 'pool', 'p256'],
    ['ok/signing worker, Ed25519 subject', 'pool', 'ed25519'],
    ['ok/in-thread, RSA subject', 'thread', 'rsa2048'],
  ] as const)('%s', async (_name, signer, keyType) => {
    const csr = await verifyCsrPem(await createCsrPem(await generateKeyPair(keyType)));
    const now = new Date();
    const issued = await (signer === 'pool' ? pool : authority).issue({
      id: SpiffeId.parse('spiffe://example.org/ns/a/sa/b'),
      publicKey: csr.spki,
      ttlMs: 90_500,
      now,
    });
    const leaf = new x509.X509Certificate(issued.certChainPem[0] as string);
    expect(issued.certChainPem[0]).toBe(`${leaf.toString('pem')}\n`);
    expect(issued.leaf.serialNumber).toBe(leaf.serialNumber);
    expect(issued.serialNumber).toBe(leaf.serialNumber);
    expect(issued.expiresAt.getTime()).toBe(leaf.notAfter.getTime());
    expect(Buffer.from(leaf.publicKey.rawData).equals(Buffer.from(csr.spki))).toBe(true);
    const chain = issued.certChainPem.map((pem) => new x509.X509Certificate(pem));
    expect(validateX509Svid(chain, authority.material.bundle, now).toString()).toBe('spiffe://example.org/ns/a/sa/b');
  });
});
