// Whether a peer's chain leads to a root that stays after a removal (chainsToAny, under chainsToKept) is judged by
// the leaf's signed path, whatever the order the certificates came in. Found in review: a chain counted as leading
// to a kept root when any of its certificates was signed by one, so a server of the removed root that added the kept
// root's (public) intermediate to its chain kept its tunnel.
import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { x509 } from '../../../src/pki/index.js';
import { chainsToAny } from '../../../src/tls/removed-roots.js';
import { createTestRoot, crossSignedBy, intermediateUnder, leafUnder } from '../../helpers/issuer-chain.js';
import { TestCa } from '../../helpers/test-ca.js';

const node = (cert: x509.X509Certificate) => new X509Certificate(Buffer.from(cert.rawData));
const der = (cert: x509.X509Certificate) => Buffer.from(cert.rawData);

describe('chainsToAny judges the leaf’s signed path', async () => {
  const kept = await TestCa.create('example.org');
  const retired = await TestCa.create('example.org');
  const keptRoots = [node(kept.root)];
  const oldLeaf = der((await retired.issue()).leaf);
  const newLeaf = der((await kept.issue()).leaf);

  it.each([
    ['ok/a leaf of the kept root with its intermediate', [newLeaf, der(kept.intermediate)], true],
    [
      'ok/the same sent with the removed root’s intermediate first',
      [newLeaf, der(retired.intermediate), der(kept.intermediate)],
      true,
    ],
    ['fail/a leaf of the removed root with its intermediate', [oldLeaf, der(retired.intermediate)], false],
    [
      'fail/a leaf of the removed root that adds the kept root’s intermediate',
      [oldLeaf, der(kept.intermediate), der(retired.intermediate)],
      false,
    ],
    [
      'fail/the same with the kept root’s intermediate last',
      [oldLeaf, der(retired.intermediate), der(kept.intermediate)],
      false,
    ],
  ] as Array<[string, Buffer[], boolean]>)('%s', (_t, chain, leads) => {
    expect(chainsToAny(chain, keptRoots)).toBe(leads);
  });

  it('ok/one intermediate key cross-signed by the removed and the kept root leads to the kept one in either order', async () => {
    const removed = await createTestRoot();
    const stays = await createTestRoot();
    const issuer = await intermediateUnder(removed, []);
    const underStays = await crossSignedBy(issuer, stays);
    const leaf = der(await leafUnder(issuer));
    expect(chainsToAny([leaf, der(issuer.cert), der(underStays)], [node(stays.cert)])).toBe(true);
    expect(chainsToAny([leaf, der(underStays), der(issuer.cert)], [node(stays.cert)])).toBe(true);
    expect(chainsToAny([leaf, der(issuer.cert)], [node(stays.cert)])).toBe(false);
  });
});
