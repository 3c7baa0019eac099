// One reusable test CA (shaped like go-spiffe's internal/test/ca.go): a real root → intermediate chain that
// mints real X509-SVIDs, and each defect on demand (expired, not yet valid, CA leaf, two URI SANs, no URI SAN,
// other trust domain, bad key usage). Every CA and every leaf has its own key: shared keys give false positives.
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
  KEY_ALGORITHMS,
  type KeyPair,
  type KeyType,
  randomSerialHex,
  TrustBundle,
  X509Svid,
  x509,
} from '../../src/pki/index.js';

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
    const keys = await generateKeyPair(options.keyType ?? 'p256');
    const now = new Date();
    const leaf =
      options.defects === undefined && options.notBefore === undefined && options.notAfter === undefined
        ? await createLeafCertificate({
            id: SpiffeId.parse(id),
            publicKey: keys.publicKey,
            issuer: this.#intermediateIssuer,
            now,
            ttlMs: options.ttlMs ?? 3600_000,
            ...(options.dnsNames ? { dnsNames: options.dnsNames } : {}),
            ...(options.ipAddresses ? { ipAddresses: options.ipAddresses } : {}),
          })
        : await this.#issueRaw(id, keys, now, options);
    return makeTestSvid(id, leaf, this.intermediate, keys);
  }

  async #issueRaw(id: string, keys: KeyPair, now: Date, options: IssueOptions): Promise<x509.X509Certificate> {
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
    extensions.push(await x509.AuthorityKeyIdentifierExtension.create(this.intermediate, false));
    return x509.X509CertificateGenerator.create({
      serialNumber: randomSerialHex(),
      subject: names.length > 0 ? '' : 'CN=no-san',
      issuer: this.intermediate.subjectName,
      notBefore: options.notBefore ?? new Date(now.getTime() - 60_000),
      notAfter: options.notAfter ?? new Date(now.getTime() + (options.ttlMs ?? 3600_000)),
      signingAlgorithm: KEY_ALGORITHMS.p256.sign,
      publicKey: keys.publicKey,
      signingKey: this.#intermediateIssuer.privateKey,
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

async function makeTestSvid(
  id: string,
  leaf: x509.X509Certificate,
  intermediate: x509.X509Certificate,
  keys: KeyPair,
): Promise<TestSvid> {
  const keyPem = await exportPrivateKeyPem(keys.privateKey);
  const certPem = leaf.toString('pem');
  const chainPem = `${certPem}\n${intermediate.toString('pem')}\n`;
  const parsedId = SpiffeId.tryParse(id) ?? SpiffeId.parse('spiffe://invalid.test/unparseable');
  return {
    id,
    leaf,
    certPem,
    chainPem,
    keyPem,
    keys,
    svid: new X509Svid({ id: parsedId, certificates: [leaf, intermediate], privateKeyPem: keyPem, keyType: keys.type }),
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
