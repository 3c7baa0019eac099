// signersAbove: the certificates a server sent that lie on a signed path up from its leaf, found in any order and
// behind any number of others. Found in review: the outbound followed Node's links (the order sent) and stopped
// after 8, so a server's real issuer sent after 8 copies of a good intermediate was never checked. Review of that fix:
// certificates that name the leaf's issuer (subject and key identifier) without having signed it each cost a signature
// check on a key of the server's choosing (a slow curve: tens of milliseconds a connection): past two, refused.
import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { x509 } from '../../../src/pki/index.js';
import { signersAbove } from '../../../src/tls/signers-above.js';
import { createTestRoot, intermediateUnder, leafUnder, lookalikeOf } from '../../helpers/issuer-chain.js';
import { TestCa } from '../../helpers/test-ca.js';

const node = (cert: x509.X509Certificate) => new X509Certificate(Buffer.from(cert.rawData));

describe('signersAbove', async () => {
  const ca = await TestCa.create('example.org');
  const other = await TestCa.create('example.org');
  const top = 'CN=top, O=example.org';
  const two = await ca.issueThrough([{ subject: top }, { subject: top }]);
  const [twoLeaf, mid, topCa] = two.svid.certificates.map(node) as X509Certificate[];
  const svid = await ca.issue();
  const leaf = node(svid.leaf);
  const inter = node(ca.intermediate);
  const root = node(ca.root);
  const stray = node((await ca.issue({ id: ca.idFor('/ns/a/sa/stray') })).leaf);
  const foreign = node(other.intermediate);
  const fingerprints = (certs: readonly X509Certificate[] | undefined) =>
    certs === undefined ? 'refused' : certs.map((cert) => cert.fingerprint256);

  it.each([
    ['ok/the intermediate', [inter], [inter]],
    ['ok/the intermediate and its root, root sent first', [root, inter], [inter, root]],
    ['ok/an unrelated leaf and another CA’s intermediate are left out', [stray, foreign, inter], [inter]],
    ['ok/nothing signed the leaf', [stray, foreign, root], []],
  ] as Array<[string, X509Certificate[], X509Certificate[]]>)('%s', (_t, sent, signers) => {
    expect(fingerprints(signersAbove(leaf, sent))).toEqual(fingerprints(signers));
  });

  it('ok/two intermediates sent nearest last are found nearest first', () => {
    expect(fingerprints(signersAbove(twoLeaf as X509Certificate, [topCa, mid] as X509Certificate[]))).toEqual(
      fingerprints([mid, topCa] as X509Certificate[]),
    );
  });

  it('ok/the leaf’s real issuer is found behind any number of certificates that did not sign it', async () => {
    const bad = await ca.issueThrough([{ uris: [ca.idFor('/ns/shop/sa/admin')], pathLength: 0 }]);
    const [badLeaf, badIssuer] = bad.svid.certificates.map(node) as X509Certificate[];
    const sent = [...Array(20).fill(inter), badIssuer] as X509Certificate[];
    expect(fingerprints(signersAbove(badLeaf as X509Certificate, sent))).toEqual(
      fingerprints([badIssuer] as X509Certificate[]),
    );
  });

  describe('certificates that name the leaf’s issuer without having signed it', async () => {
    const root = await createTestRoot();
    const issuer = await intermediateUnder(root, []);
    const signed = node(await leafUnder(issuer));
    const real = node(issuer.cert);
    const lookalikes = await Promise.all([0, 1, 2].map(() => lookalikeOf(issuer.cert).then(node)));

    it('ok/two of them beside the real issuer: the issuer is found', () => {
      expect(lookalikes.every((cert) => signed.checkIssued(cert))).toBe(true); // they do look like it
      expect(fingerprints(signersAbove(signed, [...lookalikes.slice(0, 2), real]))).toEqual(fingerprints([real]));
    });

    it('fail/three of them: the search stops, the chain is refused (undefined), whatever follows', () => {
      expect(signersAbove(signed, [real, ...lookalikes])).toBeUndefined();
      expect(signersAbove(signed, [...lookalikes, real])).toBeUndefined();
    });
  });
});
