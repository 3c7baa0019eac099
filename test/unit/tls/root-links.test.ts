import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { derKey, linkedToRoots, rememberRootLink } from '../../../src/tls/root-links.js';
import { TestCa } from '../../helpers/test-ca.js';

describe('root links', async () => {
  const ca = await TestCa.create('example.org');
  const root = new X509Certificate(ca.rootPem);

  it('ok/a link is found again under the same roots array only', () => {
    const roots = [root];
    const key = derKey(root.raw);
    rememberRootLink(roots, key, root);
    expect(linkedToRoots(roots, key)).toBe(root);
    expect(linkedToRoots([root], key)).toBeUndefined();
  });

  it('ok/bounded: a stream of new links does not keep the first ones', () => {
    const roots = [root];
    const first = derKey(Buffer.from('first'));
    rememberRootLink(roots, first, root);
    for (let i = 0; i < 1_000; i++) rememberRootLink(roots, derKey(Buffer.from(`other ${i}`)), root);
    expect(linkedToRoots(roots, first)).toBeUndefined();
  });
});
