// Certificate serial numbers: 128 random bits (unguessable), positive as a certificate serial must be.
import { pooledRandomBytes } from '../platform/random-bytes.js';

export function randomSerialHex(): string {
  const bytes = pooledRandomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40; // clear the sign bit, keep all 16 bytes significant
  return bytes.toString('hex');
}
