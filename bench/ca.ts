// CA signing rate (target: ≥ 1,000 P-256 SVIDs/s on one core): createLeafCertificate from pre-generated public
// keys, in-process, sequentially. Run alone with `node dist/bench/ca.js [--quick]`.
import { pathToFileURL } from 'node:url';
import { SpiffeId, TrustDomain } from '../src/identity/index.js';
import {
  createIntermediateCertificate,
  createLeafCertificate,
  createRootCertificate,
  generateKeyPair,
  type Issuer,
  x509,
} from '../src/pki/index.js';

export interface CaBenchResult {
  readonly name: string;
  readonly svidsPerSec: number;
  readonly keyType: 'p256';
}

export async function benchCa(options: { quick: boolean }): Promise<CaBenchResult> {
  const trustDomain = TrustDomain.parse('bench.example');
  const now = new Date();
  const rootKeys = await generateKeyPair('p256');
  const root = await createRootCertificate({ trustDomain, keys: rootKeys, now });
  const interKeys = await generateKeyPair('p256');
  const intermediate = await createIntermediateCertificate({
    trustDomain,
    keys: interKeys,
    issuer: { certificate: root, privateKey: rootKeys.privateKey, keyType: 'p256' },
    now,
  });
  const issuer: Issuer = { certificate: intermediate, privateKey: interKeys.privateKey, keyType: 'p256' };
  // Public keys as the CA API gets them: the SPKI of a verified CSR (x509.PublicKey), not a CryptoKey.
  const publicKeys = await Promise.all(
    Array.from({ length: 64 }, async () => x509.PublicKey.create((await generateKeyPair('p256')).publicKey)),
  );
  const ids = Array.from({ length: 64 }, (_, i) => SpiffeId.parse(`spiffe://bench.example/ns/bench/sa/w${i}`));
  const sign = (i: number) =>
    createLeafCertificate({
      id: ids[i % ids.length] as SpiffeId,
      publicKey: publicKeys[i % publicKeys.length] as x509.PublicKey,
      issuer,
      now,
      ttlMs: 3_600_000,
    });
  for (let i = 0; i < 200; i++) await sign(i); // warm-up: JIT and per-issuer caches
  const durationMs = options.quick ? 1000 : 5000;
  const start = process.hrtime.bigint();
  let count = 0;
  let elapsedMs = 0;
  while (elapsedMs < durationMs) {
    for (let i = 0; i < 100; i++) await sign(count + i);
    count += 100;
    elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
  }
  return { name: 'ca-sign-p256', svidsPerSec: Math.round((count * 1000) / elapsedMs), keyType: 'p256' };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await benchCa({ quick: process.argv.includes('--quick') });
  console.log(`${result.name}: ${result.svidsPerSec} SVIDs/s (${result.keyType}, one core, in-process)`);
}
