// The certificates every pair in the benchmark uses, from the project's own PKI (src/pki): one root, one
// intermediate, a server SVID (also DNS:localhost, IP:127.0.0.1 so HAProxy/nginx can verify it by name) and a
// client SVID, all ECDSA P-256. Written as PEM files in the run's temp dir in the layouts HAProxy and nginx want.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SpiffeId, TrustDomain } from '../src/identity/index.js';
import {
  createIntermediateCertificate,
  createLeafCertificate,
  createRootCertificate,
  exportPrivateKeyPem,
  generateKeyPair,
  type Issuer,
  TrustBundle,
  toPemChain,
  X509Svid,
} from '../src/pki/index.js';

export interface PemFiles {
  /** Leaf then intermediate. */
  readonly chainFile: string;
  readonly keyFile: string;
  /** Chain and key in one file (HAProxy `crt`). */
  readonly comboFile: string;
}

export interface BenchPki {
  readonly trustDomain: TrustDomain;
  readonly bundle: TrustBundle;
  /** The root certificate alone (the trust anchor every peer verifies against). */
  readonly caFile: string;
  readonly rootPem: string;
  readonly server: X509Svid;
  readonly client: X509Svid;
  readonly serverFiles: PemFiles;
  readonly clientFiles: PemFiles;
}

export const BENCH_TRUST_DOMAIN = 'bench.meshauth.test';

export async function createBenchPki(dir: string): Promise<BenchPki> {
  const td = TrustDomain.parse(BENCH_TRUST_DOMAIN);
  const now = new Date();
  const rootKeys = await generateKeyPair('p256');
  const root = await createRootCertificate({ trustDomain: td, keys: rootKeys, now });
  const interKeys = await generateKeyPair('p256');
  const intermediate = await createIntermediateCertificate({
    trustDomain: td,
    keys: interKeys,
    issuer: { certificate: root, privateKey: rootKeys.privateKey, keyType: 'p256' },
    now,
  });
  const issuer: Issuer = { certificate: intermediate, privateKey: interKeys.privateKey, keyType: 'p256' };
  const leaf = async (name: string): Promise<X509Svid> => {
    const keys = await generateKeyPair('p256');
    const id = SpiffeId.forKubernetes(td, 'bench', name);
    const certificate = await createLeafCertificate({
      id,
      publicKey: keys.publicKey,
      issuer,
      now,
      ttlMs: 24 * 3600_000,
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    return new X509Svid({
      id,
      certificates: [certificate, intermediate],
      privateKeyPem: await exportPrivateKeyPem(keys.privateKey),
      keyType: 'p256',
    });
  };
  const server = await leaf('server');
  const client = await leaf('client');
  const rootPem = toPemChain([root]);
  const caFile = join(dir, 'ca.pem');
  await writeFile(caFile, rootPem);
  return {
    trustDomain: td,
    bundle: new TrustBundle(td, [root]),
    caFile,
    rootPem,
    server,
    client,
    serverFiles: await writePemFiles(dir, 'server', server),
    clientFiles: await writePemFiles(dir, 'client', client),
  };
}

async function writePemFiles(dir: string, name: string, svid: X509Svid): Promise<PemFiles> {
  const files = {
    chainFile: join(dir, `${name}.crt`),
    keyFile: join(dir, `${name}.key`),
    comboFile: join(dir, `${name}.pem`),
  };
  await writeFile(files.chainFile, svid.certChainPem);
  await writeFile(files.keyFile, svid.privateKeyPem, { mode: 0o600 });
  await writeFile(files.comboFile, `${svid.certChainPem.trimEnd()}\n${svid.privateKeyPem}`, { mode: 0o600 });
  return files;
}
