// A plain TLS server identity outside the SPIFFE chain: a private CA of its own and a leaf for DNS names. Used for
// the admission webhook, which the Kubernetes API server calls by DNS name and verifies against the webhook
// configuration's caBundle; keeping that CA apart from the mesh root means trusting it grants nothing in the mesh.
import { randomBytes } from 'node:crypto';
import { exportPrivateKeyPem, generateKeyPair, KEY_ALGORITHMS } from './keys.js';
import { randomSerialHex } from './serial.js';
import { x509 } from './x509.js';

export interface TlsServerIdentity {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly notAfter: Date;
}

export async function createTlsServerIdentity(options: {
  readonly commonName: string;
  readonly dnsNames: readonly string[];
  readonly now: Date;
  readonly ttlMs: number;
}): Promise<TlsServerIdentity> {
  const { now, ttlMs } = options;
  const notBefore = new Date(now.getTime() - 60_000);
  const notAfter = new Date(now.getTime() + ttlMs);
  const caKeys = await generateKeyPair('p256');
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialHex(),
    name: `CN=${options.commonName} CA ${randomBytes(4).toString('hex')}, O=meshauth`,
    notBefore,
    notAfter,
    signingAlgorithm: KEY_ALGORITHMS.p256.sign,
    keys: { privateKey: caKeys.privateKey, publicKey: caKeys.publicKey },
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const keys = await generateKeyPair('p256');
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialHex(),
    subject: `CN=${options.commonName}, O=meshauth`,
    issuer: ca.subjectName,
    notBefore,
    notAfter,
    signingAlgorithm: KEY_ALGORITHMS.p256.sign,
    publicKey: keys.publicKey,
    signingKey: caKeys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension(
        options.dnsNames.map((value) => ({ type: 'dns' as const, value })),
        false,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca, false),
    ],
  });
  return {
    caPem: `${ca.toString('pem')}\n`,
    certPem: `${leaf.toString('pem')}\n`,
    keyPem: await exportPrivateKeyPem(keys.privateKey),
    notAfter,
  };
}
