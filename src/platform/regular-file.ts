// Reading a small local file that an operator or the kubelet controls (a token, a trust bundle, a JWKS): bounded
// in size, and in time. The file is opened non-blocking and refused unless it is a regular file, so a FIFO or a
// device at the path fails at once: opening a FIFO would otherwise hold a thread-pool thread until a writer came
// (one per attempt, until the pool is gone), and a device would be read without end.
import { type BigIntStats, constants } from 'node:fs';
import { open } from 'node:fs/promises';

export interface RegularFile {
  readonly bytes: Buffer;
  /** fstat of the descriptor read: the version of the file these bytes are, whatever the path names by now. */
  readonly stats: BigIntStats;
}

/**
 * The file's bytes, at most `maxBytes` of them. Throws the open error as it is (ENOENT, EACCES…), or an error
 * with code `ENOTREG` (not a regular file) or `EFBIG` (larger than maxBytes).
 */
export async function readRegularFile(path: string, maxBytes: number): Promise<RegularFile> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stats = await handle.stat({ bigint: true });
    if (!stats.isFile()) throw fileError('ENOTREG', `${path} is not a regular file`);
    if (stats.size > BigInt(maxBytes)) throw tooLarge(path, maxBytes);
    // A regular file ends at its size (these files are replaced, not appended to): reading to there spares one
    // more thread-pool round trip to find the end. One that reports no size (procfs) is read to its end, bounded.
    const capacity = stats.size === 0n ? maxBytes + 1 : Number(stats.size);
    const buffer = Buffer.allocUnsafe(capacity);
    let length = 0;
    while (length < capacity) {
      const { bytesRead } = await handle.read(buffer, length, capacity - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > maxBytes) throw tooLarge(path, maxBytes);
    return { bytes: buffer.subarray(0, length), stats };
  } finally {
    await handle.close();
  }
}

function tooLarge(path: string, maxBytes: number): Error {
  return fileError('EFBIG', `${path} is larger than ${maxBytes} bytes`);
}

function fileError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}
