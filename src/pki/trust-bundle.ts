// TrustBundle: the set of root certificates trusted for one trust domain (more than one during a root
// rotation). Pure value object; loading from disk or the CA lives elsewhere.
import type { TrustDomain } from '../identity/index.js';
import { parseCertificatesPem, toPemChain } from './certificates.js';
import type { x509 } from './x509.js';

export class TrustBundle {
  readonly trustDomain: TrustDomain;
  readonly roots: readonly x509.X509Certificate[];
  readonly #rawRoots: readonly Uint8Array[];
  #pemList: readonly string[] | undefined;

  constructor(trustDomain: TrustDomain, roots: readonly x509.X509Certificate[]) {
    this.trustDomain = trustDomain;
    this.roots = Object.freeze([...roots]);
    this.#rawRoots = this.roots.map((r) => new Uint8Array(r.rawData));
  }

  static fromPem(trustDomain: TrustDomain, pem: string): TrustBundle {
    return new TrustBundle(trustDomain, parseCertificatesPem(pem));
  }

  /** True when this exact certificate (byte for byte) is one of the roots. */
  hasRoot(cert: x509.X509Certificate): boolean {
    return this.indexOfRoot(cert) !== -1;
  }

  /** The position of this exact certificate (byte for byte) among the roots, or -1. */
  indexOfRoot(cert: x509.X509Certificate): number {
    const raw = new Uint8Array(cert.rawData);
    return this.#rawRoots.findIndex((r) => r.length === raw.length && Buffer.compare(r, raw) === 0);
  }

  toPem(): string {
    return toPemChain(this.roots);
  }

  /** The PEM strings one by one (the CA API's `bundle` array); encoded once, the bundle is immutable. */
  toPemList(): readonly string[] {
    this.#pemList ??= Object.freeze(this.roots.map((r) => `${r.toString('pem')}\n`));
    return this.#pemList;
  }
}
