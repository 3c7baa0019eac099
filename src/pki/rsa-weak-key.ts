// RSA moduli that anyone can factor at once. A CSR proves that its sender holds the private key, not that nobody else
// can compute it: a modulus with a small prime factor, or whose two primes are close, is factored in microseconds,
// and whoever factors it signs as the workload the SVID names. A careless or broken key generator makes such keys;
// the CA refuses to certify them.

/**
 * Trial division covers every prime below this bound: a sound 2048-bit modulus has none, and the bound is the one
 * public CAs check against (it keeps the division to 132 primes).
 */
const SMALL_FACTOR_BOUND = 752;
/** Steps of Fermat's method: primes closer than about 2^(bits/4) apart are found within the first few. */
const FERMAT_STEPS = 100;

export type RsaWeakness = 'small_factor' | 'close_primes';

const SMALL_PRIMES = primesBelow(SMALL_FACTOR_BOUND);

/**
 * Why the modulus can be factored at once, or undefined when neither check finds a factor. Both are cheap (about 0.1
 * ms) and bounded, as they run before the caller is authenticated. Not every weak modulus is found: a prime (its
 * private exponent is e⁻¹ mod n − 1; testing for one costs OpenSSL 64 rounds, about 0.1 s), a prime power above p²,
 * p²q.
 */
export function rsaModulusWeakness(n: bigint): RsaWeakness | undefined {
  if (SMALL_PRIMES.some((p) => n % p === 0n)) return 'small_factor';
  if (fermatFactors(n)) return 'close_primes';
  return undefined;
}

/** Fermat's method: n = a² − b² = (a − b)(a + b), with a from ⌈√n⌉ up, FERMAT_STEPS values of a. */
function fermatFactors(n: bigint): boolean {
  let a = isqrt(n);
  if (a * a < n) a += 1n;
  // b² = a² − n, kept by addition: (a + 1)² − n = b² + 2a + 1.
  let b2 = a * a - n;
  for (let step = 0; step < FERMAT_STEPS; step++) {
    if (isSquare(b2)) return a - isqrt(b2) > 1n;
    b2 += 2n * a + 1n;
    a += 1n;
  }
  return false;
}

/** Residues of squares modulo 64, 63, 65 and 11: a number with none of them is not a square (most are not). */
const SQUARE_RESIDUES = [64n, 63n, 65n, 11n].map((m) => ({
  m,
  residues: new Set(Array.from({ length: Number(m) }, (_, i) => (BigInt(i) * BigInt(i)) % m)),
}));

function isSquare(x: bigint): boolean {
  if (SQUARE_RESIDUES.some(({ m, residues }) => !residues.has(x % m))) return false;
  const r = isqrt(x);
  return r * r === x;
}

/** ⌊√x⌋ for x ≥ 0, by Newton's method from a power of two above the root. */
export function isqrt(x: bigint): bigint {
  if (x < 2n) return x;
  let r = 1n << BigInt(Math.ceil(x.toString(2).length / 2));
  for (;;) {
    const next = (r + x / r) >> 1n;
    if (next >= r) return r;
    r = next;
  }
}

function primesBelow(bound: number): bigint[] {
  const composite = new Uint8Array(bound);
  const primes: bigint[] = [];
  for (let i = 2; i < bound; i++) {
    if (composite[i] === 1) continue;
    primes.push(BigInt(i));
    for (let j = i * i; j < bound; j += i) composite[j] = 1;
  }
  return primes;
}
