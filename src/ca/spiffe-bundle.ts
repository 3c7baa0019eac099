// The trust bundle in SPIFFE bundle format: a JWK set whose keys
// have `use: "x509-svid"`, no `kid`, and exactly one CA certificate in `x5c`. Pure.
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import type { TrustBundle } from '../pki/index.js';

export interface SpiffeBundleJson {
  readonly keys: readonly (JsonWebKey & { use: 'x509-svid'; x5c: [string] })[];
  readonly spiffe_refresh_hint: number;
}

export function toSpiffeBundle(bundle: TrustBundle, refreshHintSeconds: number): SpiffeBundleJson {
  return {
    keys: bundle.roots.map((root) => {
      const jwk = createPublicKey({ key: Buffer.from(root.publicKey.rawData), format: 'der', type: 'spki' }).export({
        format: 'jwk',
      });
      return { use: 'x509-svid' as const, ...jwk, x5c: [Buffer.from(root.rawData).toString('base64')] as [string] };
    }),
    spiffe_refresh_hint: refreshHintSeconds,
  };
}
