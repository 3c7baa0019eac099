// Which live connections a root removal must cut, from the DER chains the peers presented: pure node:crypto checks.
import { describe, expect, it } from 'vitest';
import { TrustBundle } from '../../../src/pki/index.js';
import { chainsToAny, completedChain, intermediatesOf, removedRoots, rootsOf } from '../../../src/tls/removed-roots.js';
import { TestCa } from '../../helpers/test-ca.js';

const der = (cert: { rawData: ArrayBuffer }) => Buffer.from(cert.rawData);

describe('root removal', () => {
  it('ok/removedRoots names only what the new bundle dropped', async () => {
    const kept = await TestCa.create('example.org');
    const dropped = await TestCa.create('example.org');
    const before = new TrustBundle(kept.trustDomain, [...kept.bundle.roots, ...dropped.bundle.roots]);
    const gone = removedRoots(before, kept.bundle);
    expect(gone.map((root) => root.fingerprint256)).toEqual(rootsOf(dropped.bundle).map((root) => root.fingerprint256));
    expect(removedRoots(undefined, kept.bundle)).toEqual([]);
    expect(removedRoots(kept.bundle, kept.bundle)).toEqual([]);
  });

  it('ok/a leaf reported alone is completed from our intermediates and then leads to its root', async () => {
    const ca = await TestCa.create('example.org');
    const ours = await ca.issue({ id: ca.idFor('/ns/a/sa/us') });
    const peer = await ca.issue({ id: ca.idFor('/ns/a/sa/peer') });
    const leafOnly = [der(peer.leaf)];
    const roots = rootsOf(ca.bundle);
    expect(chainsToAny(leafOnly, roots)).toBe(false);
    const completed = completedChain(leafOnly, intermediatesOf([ours.svid]));
    expect(completed).toHaveLength(2);
    expect(chainsToAny(completed, roots)).toBe(true);
  });

  it('fail/a leaf of another CA is not completed with an intermediate that did not sign it', async () => {
    const ours = await TestCa.create('example.org');
    const other = await TestCa.create('example.org');
    const us = await ours.issue({ id: ours.idFor('/ns/a/sa/us') });
    const stranger = await other.issue({ id: other.idFor('/ns/a/sa/x') });
    const completed = completedChain([der(stranger.leaf)], intermediatesOf([us.svid, undefined]));
    expect(completed).toHaveLength(1);
    expect(chainsToAny(completed, rootsOf(ours.bundle))).toBe(false);
  });

  it('ok/a whole chain is left as it is', async () => {
    const ca = await TestCa.create('example.org');
    const peer = await ca.issue({ id: ca.idFor('/ns/a/sa/peer') });
    const whole = peer.svid.certificates.map(der);
    expect(completedChain(whole, intermediatesOf([peer.svid]))).toHaveLength(whole.length);
    expect(chainsToAny(whole, rootsOf(ca.bundle))).toBe(true);
  });
});
