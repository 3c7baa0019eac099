// rsaModulusWeakness: RSA moduli anyone can factor at once (a prime factor below 752, or two primes close enough for
// Fermat's method) are named; sound moduli, including ones whose primes share their leading bits, are not.
import { checkPrimeSync, generateKeyPairSync, generatePrimeSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { rsaModulusOf } from '../../../src/pki/key-der.js';
import { isqrt, rsaModulusWeakness } from '../../../src/pki/rsa-weak-key.js';
import { rsaPrimes } from '../../helpers/csr-variants.js';

describe('rsaModulusWeakness', () => {
  it('ok/a modulus OpenSSL generates is sound', () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expect(rsaModulusWeakness(rsaModulusOf(publicKey))).toBeUndefined();
  });

  it('ok/two random 1024-bit primes are sound', () => {
    const p = generatePrimeSync(1024, { bigint: true });
    const q = generatePrimeSync(1024, { bigint: true });
    expect(rsaModulusWeakness(p * q)).toBeUndefined();
  });

  it('fail/a 2048-bit modulus with the factor 739 → small_factor', () => {
    const [p, q] = rsaPrimes('small_factor');
    expect(rsaModulusWeakness(p * q)).toBe('small_factor');
  });

  it.each([2, 3, 5, 743, 751])('fail/the prime factor %i → small_factor', (p) => {
    expect(rsaModulusWeakness(BigInt(p) * generatePrimeSync(1024, { bigint: true }))).toBe('small_factor');
  });

  it('ok/the factor 757 (the first prime past the bound) is left to Fermat, which does not find it', () => {
    expect(rsaModulusWeakness(757n * generatePrimeSync(1024, { bigint: true }))).toBeUndefined();
  });

  it('fail/two neighbouring 1024-bit primes → close_primes', () => {
    const [p, q] = rsaPrimes('close_primes');
    expect(rsaModulusWeakness(p * q)).toBe('close_primes');
  });

  it('fail/a square of a prime → close_primes', () => {
    const p = generatePrimeSync(1024, { bigint: true });
    expect(rsaModulusWeakness(p * p)).toBe('close_primes');
  });

  it('fail/primes 2^500 apart are found within the 100 steps; 2^540 apart are not', () => {
    // Fermat's method starts at ⌈√n⌉ and finds the factors at (p + q) / 2, about (q − p)² / 8p above √n: for p near
    // 2^1024 that is under one step at 2^500 apart and about 2^53 steps at 2^540.
    const p = generatePrimeSync(1024, { bigint: true });
    const near = nextPrime(p + (1n << 500n));
    const far = nextPrime(p + (1n << 540n));
    expect(rsaModulusWeakness(p * near)).toBe('close_primes');
    expect(rsaModulusWeakness(p * far)).toBeUndefined();
  });
});

describe('isqrt', () => {
  it('ok/⌊√x⌋ for any x ≥ 0, up to 4096 bits', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 4096n) - 1n }), (x) => {
        const r = isqrt(x);
        return r * r <= x && (r + 1n) * (r + 1n) > x;
      }),
      { numRuns: 500 },
    );
  });
});

function nextPrime(from: bigint): bigint {
  for (let q = from | 1n; q < from + 1_000_000n; q += 2n) if (checkPrimeSync(q)) return q;
  throw new Error('no prime within 1,000,000');
}
