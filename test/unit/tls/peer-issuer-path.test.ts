import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { peerIssuerPath } from '../../../src/tls/peer-issuer-path.js';
import { derKey } from '../../../src/tls/root-links.js';
import { TestCa } from '../../helpers/test-ca.js';

const ders = (chainPem: string) =>
  (chainPem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []).map(
    (pem) => new X509Certificate(pem).raw,
  );

/** The path found, and that each issuer comes with its derKey. */
const pathOf = (chain: readonly Buffer[], roots: readonly X509Certificate[], maxIssuers: number) => {
  const { issuers, issuerKeys, complete } = peerIssuerPath(
    new X509Certificate(chain[0] as Buffer),
    chain.slice(1),
    roots,
    maxIssuers,
  );
  expect(issuerKeys).toEqual(issuers.map(derKey));
  return { issuers, complete };
};

describe('peerIssuerPath', async () => {
  const ca = await TestCa.create('example.org');
  const other = await TestCa.create('example.org');
  const roots = [new X509Certificate(ca.rootPem)];
  const rootDer = roots[0]?.raw as Buffer;
  const top = 'CN=top, O=example.org';
  const [leaf, mid, topCa] = ders((await ca.issueThrough([{ subject: top }, { subject: top }])).chainPem) as Buffer[];
  const [ownLeaf, ownIntermediate] = ders((await ca.issue()).chainPem) as Buffer[];
  const [, foreignIntermediate] = ders((await other.issue()).chainPem) as Buffer[];

  it.each([
    ['ok/one intermediate, the root appended', [ownLeaf, ownIntermediate, rootDer], [ownIntermediate], true],
    ['ok/two intermediates nearest first', [leaf, mid, topCa], [mid, topCa], true],
    ['ok/two intermediates nearest last', [leaf, topCa, mid], [mid, topCa], true],
    ['ok/leaf signed by the root', [ownIntermediate, rootDer], [], true],
    ['fail/leaf alone', [leaf], [], false],
    ['fail/the upper intermediate missing', [leaf, mid], [mid], false],
    // Same names, another key: Node would link it; its key does not verify the leaf's signature.
    ['fail/look-alike intermediate of another CA', [ownLeaf, foreignIntermediate, rootDer], [], false],
  ] as Array<[string, Buffer[], Buffer[], boolean]>)('%s', (_t, chain, issuers, complete) => {
    expect(pathOf(chain, roots, 8)).toEqual({ issuers, complete });
  });

  it('fail/longer than maxIssuers', () => {
    expect(pathOf([leaf as Buffer, mid as Buffer, topCa as Buffer], roots, 1)).toEqual({
      issuers: [mid],
      complete: false,
    });
  });

  // A link to a root is remembered per roots array and exact DER: what one bundle's roots signed says nothing about
  // another's, and a certificate with the same names but other bytes is checked afresh.
  it('ok/a remembered link completes the same path again, in either order', () => {
    const chain = [ownLeaf, ownIntermediate, rootDer] as Buffer[];
    expect(pathOf(chain, roots, 8)).toEqual({ issuers: [ownIntermediate], complete: true });
    expect(pathOf(chain, roots, 8)).toEqual({ issuers: [ownIntermediate], complete: true });
    expect(pathOf([ownLeaf, rootDer, ownIntermediate] as Buffer[], roots, 8)).toEqual({
      issuers: [ownIntermediate],
      complete: true,
    });
  });

  it('fail/a link remembered for one roots array does not serve another', () => {
    const chain = [ownLeaf, ownIntermediate] as Buffer[];
    expect(pathOf(chain, roots, 8).complete).toBe(true);
    const otherRoots = [new X509Certificate(other.rootPem)];
    expect(pathOf(chain, otherRoots, 8)).toEqual({ issuers: [ownIntermediate], complete: false });
  });

  it('fail/a look-alike is checked afresh after the real intermediate was remembered', () => {
    expect(pathOf([ownLeaf, ownIntermediate] as Buffer[], roots, 8).complete).toBe(true);
    expect(pathOf([ownLeaf, foreignIntermediate, rootDer] as Buffer[], roots, 8)).toEqual({
      issuers: [],
      complete: false,
    });
  });

  it('fail/a leaf the remembered intermediate did not sign', async () => {
    expect(pathOf([ownLeaf, ownIntermediate] as Buffer[], roots, 8).complete).toBe(true);
    const [foreignLeaf] = ders((await other.issue()).chainPem) as Buffer[];
    expect(pathOf([foreignLeaf, ownIntermediate, rootDer] as Buffer[], roots, 8)).toEqual({
      issuers: [],
      complete: false,
    });
  });
});
