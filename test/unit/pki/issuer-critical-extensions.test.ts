// The leaf's extension-set rules now apply to every issuer, roots included. Their list of
// "processed" extensions is meant to be OpenSSL's (X509_supported_extension) but lacks crlDistributionPoints
// (2.5.29.31) and OCSP no-check (1.3.6.1.5.5.7.48.1.5). OpenSSL 3 (Node 20's, `openssl verify`, a Node TLS
// handshake) accepts a CA with a critical CRL distribution point, so a chain every handshake accepts would now be
// refused by the only chain check of CA renewal and passport x5c.
import { beforeAll, describe, expect, it } from 'vitest';
import { TrustDomain } from '../../../src/identity/index.js';
import { TrustBundle, validateX509Svid, x509 } from '../../../src/pki/index.js';
import { createTestRoot, intermediateUnder, leafUnder, type TestRoot } from '../../helpers/issuer-chain.js';

const td = TrustDomain.parse('example.org');
let root: TestRoot;

beforeAll(async () => {
  root = await createTestRoot();
});

describe('issuer extension rules: what OpenSSL processes is not unknown', () => {
  it('ok/an intermediate with a critical CRL distribution point (OpenSSL 3 accepts it in a handshake)', async () => {
    const issuer = await intermediateUnder(root, [
      new x509.CRLDistributionPointsExtension(['http://pki.example.org/intermediate.crl'], true),
    ]);
    const intermediate = issuer.cert;
    const leaf = await leafUnder(issuer);
    expect(() => validateX509Svid([leaf, intermediate], new TrustBundle(td, [root.cert]), new Date())).not.toThrow();
  });
});
