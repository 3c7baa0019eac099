// Random bytes for values drawn per request or per certificate (a passport's jti, a cookie's IV, a serial number).
// Each call into OpenSSL's generator costs about 5 µs on the machines measured (Node 20 and 24, randomBytes(12)),
// whatever the size asked for, so the bytes come from a block drawn once per 4 KiB and handed out in order: every
// byte is handed out once, never twice, and the block is overwritten as it is refilled. Node's randomUUID keeps a
// cache of the same kind. Only for values that travel in the clear anyway (identifiers, IVs, serial numbers), never
// for keys: the block holds the next bytes in memory.
import { randomFillSync } from 'node:crypto';

const BLOCK_BYTES = 4096;

const block = Buffer.alloc(BLOCK_BYTES);
let next = BLOCK_BYTES;

/**
 * `size` fresh random bytes (a copy, the caller's to keep). Sizes above 256 bytes are drawn on their own: they would use
 * up a block in a few calls, and at that size the per-call cost no longer dominates.
 */
export function pooledRandomBytes(size: number): Buffer {
  if (!Number.isInteger(size) || size < 0) throw new RangeError(`not a byte count: ${size}`);
  if (size > 256) return randomFillSync(Buffer.allocUnsafe(size));
  if (next + size > BLOCK_BYTES) {
    randomFillSync(block);
    next = 0;
  }
  const bytes = Buffer.from(block.subarray(next, next + size));
  next += size;
  return bytes;
}
