import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pooledRandomBytes } from '../../../src/platform/random-bytes.js';

describe('pooledRandomBytes', () => {
  it('hands out each value once, across many refills of its block', () => {
    // 12-byte values as passports' jti take them: 20,000 of them span about 60 refills of the 4 KiB block.
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const value = pooledRandomBytes(12);
      expect(value.length).toBe(12);
      seen.add(value.toString('hex'));
    }
    expect(seen.size).toBe(20_000);
    expect(seen.has('00'.repeat(12))).toBe(false);
  });

  it('gives the caller a copy: refilling the block changes no value already handed out', () => {
    const held = pooledRandomBytes(16);
    const copy = Buffer.from(held);
    for (let i = 0; i < 300; i++) pooledRandomBytes(16); // 4,800 bytes: at least one refill of the 4 KiB block
    expect(held.equals(copy)).toBe(true);
  });

  it('looks uniform: every byte value turns up in 256 KiB, none far more often than the rest', () => {
    const counts = new Array<number>(256).fill(0);
    for (let i = 0; i < 8_192; i++) for (const byte of pooledRandomBytes(32)) counts[byte] = (counts[byte] ?? 0) + 1;
    // 1,024 expected per value; a block left zero (never filled) would push the count of 0 far outside this band.
    expect(Math.min(...counts)).toBeGreaterThan(850);
    expect(Math.max(...counts)).toBeLessThan(1_200);
  });

  it('returns exactly the size asked for, small, at the block edge, and large', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 5_000 }), { maxLength: 40 }), (sizes) => {
        for (const size of sizes) expect(pooledRandomBytes(size).length).toBe(size);
      }),
    );
    expect(pooledRandomBytes(0).length).toBe(0);
  });

  it('refuses what is not a byte count', () => {
    for (const size of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => pooledRandomBytes(size)).toThrow(RangeError);
    }
  });
});
