// X509Svid: one workload credential (leaf + intermediates, the private key, the SPIFFE ID). Immutable; rotation
// replaces the whole object (STYLE 3). The PEM forms are computed once, since TLS contexts are built from them.
import type { SpiffeId } from '../identity/index.js';
import { parseCertificatesPem, toPemChain } from './certificates.js';
import type { KeyType } from './keys.js';
import type { x509 } from './x509.js';

export class X509Svid {
  readonly id: SpiffeId;
  /** Leaf first, then the intermediates up to (not including) the root. */
  readonly certificates: readonly x509.X509Certificate[];
  readonly certChainPem: string;
  readonly privateKeyPem: string;
  readonly keyType: KeyType;

  constructor(options: {
    id: SpiffeId;
    certificates: readonly x509.X509Certificate[];
    privateKeyPem: string;
    keyType: KeyType;
  }) {
    if (options.certificates.length === 0) throw new TypeError('an X509Svid needs at least its leaf certificate');
    this.id = options.id;
    this.certificates = Object.freeze([...options.certificates]);
    this.certChainPem = toPemChain(this.certificates);
    this.privateKeyPem = options.privateKeyPem;
    this.keyType = options.keyType;
  }

  static fromPem(options: { id: SpiffeId; certChainPem: string; privateKeyPem: string; keyType: KeyType }): X509Svid {
    return new X509Svid({ ...options, certificates: parseCertificatesPem(options.certChainPem) });
  }

  get leaf(): x509.X509Certificate {
    return this.certificates[0] as x509.X509Certificate;
  }

  get notBefore(): Date {
    return this.leaf.notBefore;
  }

  get notAfter(): Date {
    return this.leaf.notAfter;
  }

  /** Milliseconds of validity left at `now` (negative once expired). */
  remainingMs(now: Date): number {
    return this.notAfter.getTime() - now.getTime();
  }
}
