// One reusable test CA (shaped like go-spiffe's internal/test/ca.go): a real root → intermediate chain that
// mints real X509-SVIDs, and each defect on demand (expired, not yet valid, CA leaf, two URI SANs, no URI SAN,
// other trust domain, bad key usage, a weak key or signature, a chain through defective or many intermediates).
// Every CA and every leaf has its own key: shared keys give false positives.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpiffeId, TrustDomain } from '../../src/identity/index.js';
import {
  createIntermediateCertificate,
  createLeafCertificate,
  createRootCertificate,
  exportPrivateKeyPem,
  generateKeyPair,
  type Issuer,
  importPrivateKeyPem,
  KEY_ALGORITHMS,
  type KeyPair,
  type KeyType,
  randomSerialHex,
  TrustBundle,
  X509Svid,
  x509,
} from '../../src/pki/index.js';
import { subtle } from '../../src/pki/x509.js';

export interface LeafDefects {
  /** Replace the URI SANs (e.g. two IDs, or [] for none). */
  readonly uris?: readonly string[];
  readonly dnsNames?: readonly string[];
  readonly isCa?: boolean;
  /** Key usage flags, or null to omit the extension. */
  readonly keyUsage?: number | null;
  readonly keyUsageCritical?: boolean;
  /** EKU OIDs, or null to omit the extension. */
  readonly extKeyUsage?: readonly string[] | null;
}

export interface IssueOptions {
  readonly id?: string;
  readonly keyType?: KeyType;
  readonly ttlMs?: number;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  readonly defects?: LeafDefects;
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  /** An RSA leaf key of this many bits (e.g. 1024) instead of `keyType`. */
  readonly rsaBits?: number;
  /** The hash of the issuer's signature on the leaf (default SHA-256; e.g. 'SHA-1'). */
  readonly signatureHash?: 'SHA-1' | 'SHA-256';
}

/** One CA certificate between the root and a leaf (issueThrough), with its defects. */
export interface IntermediateSpec {
  /** URI SANs (default: the trust-domain ID, as the real intermediate carries). */
  readonly uris?: readonly string[];
  /** basicConstraints cA (default true); null omits the extension. */
  readonly isCa?: boolean | null;
  /** basicConstraints pathLenConstraint (default none). */
  readonly pathLength?: number;
  /** Size of an opaque non-critical extension added to make the certificate large (default none). */
  readonly paddingBytes?: number;
  /**
   * Subject DN (default `CN=test intermediate <n>, O=<trust domain>`). Its issuer's subject makes it self-issued,
   * which a pathLen does not count (RFC 5280 §4.2.1.9): how a second CA fits under the pathLen-1 root.
   */
  readonly subject?: string;
}

export interface TestSvid {
  readonly id: string;
  readonly leaf: x509.X509Certificate;
  /** Leaf only. */
  readonly certPem: string;
  /** Leaf + intermediate: what a TLS peer sends. */
  readonly chainPem: string;
  readonly keyPem: string;
  readonly keys: KeyPair;
  readonly svid: X509Svid;
}

export class TestCa {
  readonly trustDomain: TrustDomain;
  readonly root: x509.X509Certificate;
  readonly intermediate: x509.X509Certificate;
  readonly bundle: TrustBundle;
  readonly #intermediateIssuer: Issuer;
  readonly rootKeyPem: string;
  readonly intermediateKeyPem: string;

  private constructor(init: {
    trustDomain: TrustDomain;
    root: x509.X509Certificate;
    intermediate: x509.X509Certificate;
    intermediateIssuer: Issuer;
    rootKeyPem: string;
    intermediateKeyPem: string;
  }) {
    this.trustDomain = init.trustDomain;
    this.root = init.root;
    this.intermediate = init.intermediate;
    this.#intermediateIssuer = init.intermediateIssuer;
    this.bundle = new TrustBundle(init.trustDomain, [init.root]);
    this.rootKeyPem = init.rootKeyPem;
    this.intermediateKeyPem = init.intermediateKeyPem;
  }

  static async create(trustDomain = 'example.org', now = new Date()): Promise<TestCa> {
    const td = TrustDomain.parse(trustDomain);
    const rootKeys = await generateKeyPair('p256');
    const root = await createRootCertificate({ trustDomain: td, keys: rootKeys, now });
    const interKeys = await generateKeyPair('p256');
    const intermediate = await createIntermediateCertificate({
      trustDomain: td,
      keys: interKeys,
      issuer: { certificate: root, privateKey: rootKeys.privateKey, keyType: 'p256' },
      now,
    });
    return new TestCa({
      trustDomain: td,
      root,
      intermediate,
      intermediateIssuer: { certificate: intermediate, privateKey: interKeys.privateKey, keyType: 'p256' },
      rootKeyPem: await exportPrivateKeyPem(rootKeys.privateKey),
      intermediateKeyPem: await exportPrivateKeyPem(interKeys.privateKey),
    });
  }

  get rootPem(): string {
    return this.root.toString('pem');
  }

  get intermediatePem(): string {
    return this.intermediate.toString('pem');
  }

  get bundlePem(): string {
    return this.bundle.toPem();
  }

  idFor(path: string): string {
    return `spiffe://${this.trustDomain.name}${path}`;
  }

  async issue(options: IssueOptions = {}): Promise<TestSvid> {
    const id = options.id ?? this.idFor('/ns/default/sa/test');
    const keys = await leafKeys(options);
    const now = new Date();
    const leaf =
      options.defects === undefined &&
      options.notBefore === undefined &&
      options.notAfter === undefined &&
      options.rsaBits === undefined &&
      options.signatureHash === undefined
        ? await createLeafCertificate({
            id: SpiffeId.parse(id),
            publicKey: keys.publicKey,
            issuer: this.#intermediateIssuer,
            now,
            ttlMs: options.ttlMs ?? 3600_000,
            ...(options.dnsNames ? { dnsNames: options.dnsNames } : {}),
            ...(options.ipAddresses ? { ipAddresses: options.ipAddresses } : {}),
          })
        : await this.#issueRaw(id, keys, now, options, this.#intermediateIssuer);
    return makeTestSvid(id, leaf, [this.intermediate], keys);
  }

  /**
   * A leaf issued through the given CA certificates instead of the real intermediate: the first is signed by
   * `under` (the root by default, or the real intermediate), each next one by the one before, the leaf by the last.
   * The chain (`chainPem`) is the leaf then those CA certificates, nearest first.
   */
  async issueThrough(
    intermediates: readonly IntermediateSpec[],
    options: IssueOptions & { readonly under?: 'root' | 'intermediate' } = {},
  ): Promise<TestSvid> {
    let issuer: Issuer =
      options.under === 'intermediate'
        ? this.#intermediateIssuer
        : { certificate: this.root, privateKey: await this.#rootPrivateKey(), keyType: 'p256' };
    const cas: x509.X509Certificate[] = [];
    const now = new Date();
    for (const spec of intermediates) {
      const caKeys = await generateKeyPair('p256');
      const extensions: x509.Extension[] = [];
      if (spec.isCa !== null)
        extensions.push(new x509.BasicConstraintsExtension(spec.isCa ?? true, spec.pathLength, true));
      extensions.push(
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        new x509.SubjectAlternativeNameExtension(
          (spec.uris ?? [this.trustDomain.idString]).map((value) => ({ type: 'url' as const, value })),
          false,
        ),
        await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(issuer.certificate, false),
      );
      if (spec.paddingBytes !== undefined) {
        // A private-arc OID nobody processes, non-critical: only the size matters.
        extensions.push(new x509.Extension('1.3.6.1.4.1.55555.1', false, new Uint8Array(spec.paddingBytes).buffer));
      }
      const certificate = await x509.X509CertificateGenerator.create({
        serialNumber: randomSerialHex(),
        subject: spec.subject ?? `CN=test intermediate ${cas.length + 1}, O=${this.trustDomain.name}`,
        issuer: issuer.certificate.subjectName,
        notBefore: new Date(now.getTime() - 60_000),
        notAfter: new Date(now.getTime() + 24 * 3600_000),
        signingAlgorithm: KEY_ALGORITHMS.p256.sign,
        publicKey: caKeys.publicKey,
        signingKey: issuer.privateKey,
        extensions,
      });
      cas.push(certificate);
      issuer = { certificate, privateKey: caKeys.privateKey, keyType: 'p256' };
    }
    const id = options.id ?? this.idFor('/ns/default/sa/test');
    const keys = await leafKeys(options);
    const leaf = await this.#issueRaw(id, keys, now, options, issuer);
    const chain = [...cas].reverse();
    if (options.under === 'intermediate') chain.push(this.intermediate);
    return makeTestSvid(id, leaf, chain, keys);
  }

  async #rootPrivateKey(): Promise<CryptoKey> {
    return (await importPrivateKeyPem(this.rootKeyPem)).privateKey;
  }

  async #issueRaw(
    id: string,
    keys: KeyPair,
    now: Date,
    options: IssueOptions,
    issuer: Issuer,
  ): Promise<x509.X509Certificate> {
    const d = options.defects ?? {};
    const names: x509.JsonGeneralName[] = (d.uris ?? [id]).map((value) => ({ type: 'url' as const, value }));
    for (const dns of d.dnsNames ?? options.dnsNames ?? []) names.push({ type: 'dns', value: dns });
    for (const ip of options.ipAddresses ?? []) names.push({ type: 'ip', value: ip });
    const extensions: x509.Extension[] = [new x509.BasicConstraintsExtension(d.isCa ?? false, undefined, true)];
    const keyUsage = d.keyUsage === undefined ? x509.KeyUsageFlags.digitalSignature : d.keyUsage;
    if (keyUsage !== null) extensions.push(new x509.KeyUsagesExtension(keyUsage, d.keyUsageCritical ?? true));
    const eku =
      d.extKeyUsage === undefined
        ? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]
        : d.extKeyUsage;
    if (eku !== null) extensions.push(new x509.ExtendedKeyUsageExtension([...eku], false));
    if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, true));
    extensions.push(await x509.AuthorityKeyIdentifierExtension.create(issuer.certificate, false));
    return x509.X509CertificateGenerator.create({
      serialNumber: randomSerialHex(),
      subject: names.length > 0 ? '' : 'CN=no-san',
      issuer: issuer.certificate.subjectName,
      notBefore: options.notBefore ?? new Date(now.getTime() - 60_000),
      notAfter: options.notAfter ?? new Date(now.getTime() + (options.ttlMs ?? 3600_000)),
      signingAlgorithm: { ...KEY_ALGORITHMS.p256.sign, hash: options.signatureHash ?? 'SHA-256' } as EcdsaParams,
      publicKey: keys.publicKey,
      signingKey: issuer.privateKey,
      extensions,
    });
  }

  /** Writes root, intermediate, bundle and keys as files into a temp dir (removed by the returned cleanup). */
  writeFiles(): { dir: string; cleanup: () => void } {
    const dir = mkdtempSync(join(tmpdir(), 'meshauth-testca-'));
    writeFileSync(join(dir, 'root.crt'), this.rootPem);
    writeFileSync(join(dir, 'intermediate.crt'), this.intermediatePem);
    writeFileSync(join(dir, 'bundle.pem'), this.bundlePem);
    return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  }
}

/** The leaf's key pair: `keyType`, or an RSA key of `rsaBits` (typed rsa2048, the only RSA KeyType there is). */
async function leafKeys(options: IssueOptions): Promise<KeyPair> {
  if (options.rsaBits === undefined) return generateKeyPair(options.keyType ?? 'p256');
  const pair = (await subtle.generateKey(
    { ...KEY_ALGORITHMS.rsa2048.generate, modulusLength: options.rsaBits } as RsaHashedKeyGenParams,
    true,
    ['sign', 'verify'],
  )) as CryptoKeyPair;
  return { type: 'rsa2048', privateKey: pair.privateKey, publicKey: pair.publicKey };
}

async function makeTestSvid(
  id: string,
  leaf: x509.X509Certificate,
  intermediates: readonly x509.X509Certificate[],
  keys: KeyPair,
): Promise<TestSvid> {
  const keyPem = await exportPrivateKeyPem(keys.privateKey);
  const certPem = leaf.toString('pem');
  const chainPem = `${[certPem, ...intermediates.map((c) => c.toString('pem'))].join('\n')}\n`;
  const parsedId = SpiffeId.tryParse(id) ?? SpiffeId.parse('spiffe://invalid.test/unparseable');
  return {
    id,
    leaf,
    certPem,
    chainPem,
    keyPem,
    keys,
    svid: new X509Svid({
      id: parsedId,
      certificates: [leaf, ...intermediates],
      privateKeyPem: keyPem,
      keyType: keys.type,
    }),
  };
}

/** `svid` sending `above` after its leaf, in that order, instead of its own chain (one a server made up). */
export function presenting(svid: TestSvid, above: readonly x509.X509Certificate[]): TestSvid {
  const certificates = [svid.leaf, ...above];
  return {
    ...svid,
    chainPem: `${certificates.map((cert) => cert.toString('pem')).join('\n')}\n`,
    svid: new X509Svid({ id: svid.svid.id, certificates, privateKeyPem: svid.keyPem, keyType: svid.keys.type }),
  };
}

/** Writes one SVID's chain and key to `<dir>/<name>.crt|.key` and returns the paths. */
export function writeSvidFiles(dir: string, name: string, svid: TestSvid): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  writeFileSync(cert, svid.chainPem);
  writeFileSync(key, svid.keyPem, { mode: 0o600 });
  return { cert, key };
}
