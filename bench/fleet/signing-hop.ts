// µs per signature in-thread vs through a SigningPool of 1 and 2 workers (the cost of the worker hop).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaAuthority } from '../../src/ca/authority.js';
import { SigningPool } from '../../src/ca/signing-pool.js';
import { initCa } from '../../src/ca/store.js';
import { SpiffeId, TrustDomain } from '../../src/identity/index.js';
import { generateKeyPair } from '../../src/pki/index.js';
import { createLogger } from '../../src/telemetry/index.js';

export interface HopResult {
  readonly workers: number;
  readonly usPerSignature: number;
  readonly signaturesPerSecond: number;
}

export async function measureSigningHop(count = 4000, concurrency = 64): Promise<HopResult[]> {
  const dir = await mkdtemp(join(tmpdir(), 'meshauth-hop-'));
  try {
    await initCa({ dir, trustDomain: TrustDomain.parse('fleet.test') });
    const authority = await CaAuthority.open(dir, createLogger({ level: 'silent' }));
    const keys = await generateKeyPair('p256');
    const id = SpiffeId.parse('spiffe://fleet.test/ns/bench/sa/hop');
    const results: HopResult[] = [];
    for (const workers of [0, 1, 2]) {
      const pool = SigningPool.start(dir, authority, workers);
      const issue = () => pool.issue({ id, publicKey: keys.publicKey, ttlMs: 3_600_000, now: new Date() });
      for (let i = 0; i < 200; i += 1) await issue(); // warm-up, and the workers load their key
      const started = process.hrtime.bigint();
      let next = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < count) {
            next += 1;
            await issue();
          }
        }),
      );
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      await pool.close();
      results.push({
        workers,
        usPerSignature: Math.round((seconds * 1e6) / count),
        signaturesPerSecond: Math.round(count / seconds),
      });
    }
    return results;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await measureSigningHop()) {
    console.log(`workers=${r.workers}  ${r.usPerSignature} µs/signature  ${r.signaturesPerSecond}/s`);
  }
}
