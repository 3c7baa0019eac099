// Per-certificate values a passport needs on every mint and verify, computed once: the signing or verification
// KeyObject, the x5c header, the `x5t#S256` thumbprint. Bounded by the number of live SVIDs in the mesh.
import { createHash, createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import type { X509Svid } from '../../pki/index.js';
import { algorithmForKey, type JwsAlgorithm } from './compact-jws.js';

export interface SigningMaterial {
  readonly key: KeyObject;
  readonly algorithm: JwsAlgorithm;
  readonly x5c: readonly string[];
  readonly thumbprint: string;
}

const signing = new WeakMap<X509Svid, SigningMaterial>();

export function signingMaterial(svid: X509Svid): SigningMaterial {
  let material = signing.get(svid);
  if (material === undefined) {
    const leaf = Buffer.from(svid.leafDer);
    const x5c = [leaf, ...svid.intermediates.map((c) => Buffer.from(c.rawData))].map((der) => der.toString('base64'));
    const key = createPrivateKey(svid.privateKeyPem);
    const algorithm = algorithmForKey(key);
    if (algorithm === undefined) throw new TypeError(`no passport algorithm for a ${svid.keyType} key`);
    material = {
      key,
      algorithm,
      x5c,
      thumbprint: thumbprintOfDer(leaf),
    };
    signing.set(svid, material);
  }
  return material;
}

/** `x5t#S256`: base64url SHA-256 of the DER certificate. */
export function thumbprintOfDer(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('base64url');
}

export function sha256Base64url(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}

export interface LeafKey {
  readonly key: KeyObject;
  readonly thumbprint: string;
}

const MAX_LEAF_KEYS = 4096;
const leafKeys = new Map<string, LeafKey>();

/** Public key and thumbprint of a base64 DER leaf from an x5c header, cached by the base64 text. */
export function leafKeyOf(x5cLeaf: string): LeafKey {
  let entry = leafKeys.get(x5cLeaf);
  if (entry === undefined) {
    const der = Buffer.from(x5cLeaf, 'base64');
    entry = { key: new X509Certificate(der).publicKey, thumbprint: thumbprintOfDer(der) };
    if (leafKeys.size >= MAX_LEAF_KEYS) leafKeys.clear();
    leafKeys.set(x5cLeaf, entry);
  }
  return entry;
}
