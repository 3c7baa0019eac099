// X509Svid: one workload credential (leaf + intermediates, the private key, the SPIFFE ID). Immutable; rotation
// replaces the whole object, never half of it. The PEM forms are computed once, since TLS contexts are built from them.
// An SVID the agent has just validated from DER keeps its leaf as DER until someone asks for the parsed
// certificate: most holders only need the PEM, the ID and the validity window, and parsing a leaf was the largest
// part of what accepting a new SVID cost.
import type { SpiffeId } from '../identity/index.js';
import { certificatePem, parseCertificate, parseCertificatesPem, toPemChain } from './certificates.js';
import type { KeyType } from './keys.js';
import { certificateSerialHex } from './leaf-der.js';
import type { x509 } from './x509.js';

interface SvidKey {
  readonly id: SpiffeId;
  readonly privateKeyPem: string;
  readonly keyType: KeyType;
}

/** A leaf validated from its DER (validateX509SvidLeafDer): the ID and validity window are the validator's. */
interface ValidatedLeafDer extends SvidKey {
  readonly leafDer: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly intermediates: readonly x509.X509Certificate[];
}

export class X509Svid {
  readonly id: SpiffeId;
  readonly certChainPem: string;
  readonly privateKeyPem: string;
  readonly keyType: KeyType;
  readonly notBefore: Date;
  readonly notAfter: Date;
  #certificates: readonly x509.X509Certificate[] | undefined;
  readonly #leafDer: Uint8Array | undefined;
  readonly #intermediates: readonly x509.X509Certificate[];

  constructor(options: (SvidKey & { readonly certificates: readonly x509.X509Certificate[] }) | ValidatedLeafDer) {
    this.id = options.id;
    this.privateKeyPem = options.privateKeyPem;
    this.keyType = options.keyType;
    if ('leafDer' in options) {
      this.#leafDer = options.leafDer;
      this.#intermediates = Object.freeze([...options.intermediates]);
      this.certChainPem = `${certificatePem(options.leafDer)}\n${toPemChain(this.#intermediates)}`;
      this.notBefore = options.notBefore;
      this.notAfter = options.notAfter;
      return;
    }
    const leaf = options.certificates[0];
    if (leaf === undefined) throw new TypeError('an X509Svid needs at least its leaf certificate');
    this.#certificates = Object.freeze([...options.certificates]);
    this.#intermediates = this.#certificates.slice(1);
    this.certChainPem = toPemChain(this.#certificates);
    this.notBefore = leaf.notBefore;
    this.notAfter = leaf.notAfter;
  }

  static fromPem(options: { id: SpiffeId; certChainPem: string; privateKeyPem: string; keyType: KeyType }): X509Svid {
    return new X509Svid({ ...options, certificates: parseCertificatesPem(options.certChainPem) });
  }

  /** Leaf first, then the intermediates up to (not including) the root; a leaf kept as DER is parsed here, once. */
  get certificates(): readonly x509.X509Certificate[] {
    this.#certificates ??= Object.freeze([parseCertificate(this.#leafDer as Uint8Array), ...this.#intermediates]);
    return this.#certificates;
  }

  get leaf(): x509.X509Certificate {
    return this.certificates[0] as x509.X509Certificate;
  }

  /** The certificates after the leaf, up to (not including) the root. */
  get intermediates(): readonly x509.X509Certificate[] {
    return this.#intermediates;
  }

  /** The leaf's serial number in hex, as @peculiar/x509 prints it, without parsing the leaf. */
  get serialNumber(): string {
    return this.#certificates?.[0]?.serialNumber ?? certificateSerialHex(this.#leafDer as Uint8Array);
  }

  /** The leaf's DER, without parsing it. */
  get leafDer(): Uint8Array {
    return this.#leafDer ?? new Uint8Array(this.leaf.rawData);
  }

  /** Milliseconds of validity left at `now` (negative once expired). */
  remainingMs(now: Date): number {
    return this.notAfter.getTime() - now.getTime();
  }
}
