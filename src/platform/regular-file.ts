// Reading a small local file that an operator or the kubelet controls (a token, a trust bundle, a JWKS): bounded
// in size. The file is opened non-blocking and refused unless it is a regular file, so a FIFO or a device at the
// path fails at once: opening a FIFO would otherwise block until a writer came, and a device would be read without
// end. It is opened with O_NOCTTY too: a terminal at the path (a symlink to a pty whose master another user holds)
// would otherwise become the controlling terminal of a process that leads its session without one (a systemd
// service, a container's entrypoint), and that user could then end it at will: ^C (SIGINT) or a hang-up (SIGHUP,
// which killed the sidecar without a log line). A PID 1 ignores both, so a container's entrypoint only under an init
// or in a pod sharing its PID namespace.
//
// The read is synchronous. These files are a few KiB on a local or in-memory volume (a Secret, a ConfigMap, a
// projected token): reading one that way costs about 12 µs of CPU, where fs.promises' four thread-pool round trips
// (open, fstat, read, close) cost about 100 µs, and an agent reads two at every bootstrap. The paths must be on such
// a volume: a read from a hung network mount stalls the whole process (through the thread pool it held one of its
// four threads, and with four such reads every asynchronous file, DNS and crypto call).
import { type BigIntStats, closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

export interface RegularFile {
  readonly bytes: Buffer;
  /** fstat of the descriptor read: the version of the file these bytes are, whatever the path names by now. */
  readonly stats: BigIntStats;
}

/**
 * The file's bytes, at most `maxBytes` of them. Throws the open error as it is (ENOENT, EACCES…), or an error
 * with code `ENOTREG` (not a regular file) or `EFBIG` (larger than maxBytes).
 */
export function readRegularFile(path: string, maxBytes: number): RegularFile {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    const stats = fstatSync(fd, { bigint: true });
    if (!stats.isFile()) throw fileError('ENOTREG', `${path} is not a regular file`);
    if (stats.size > BigInt(maxBytes)) throw tooLarge(path, maxBytes);
    // A regular file ends at its size (these files are replaced, not appended to): reading to there spares one more
    // read to find the end. One that reports no size (procfs) is read to its end, bounded.
    const capacity = stats.size === 0n ? maxBytes + 1 : Number(stats.size);
    const buffer = Buffer.allocUnsafe(capacity);
    let length = 0;
    while (length < capacity) {
      const bytesRead = readSync(fd, buffer, length, capacity - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > maxBytes) throw tooLarge(path, maxBytes);
    return { bytes: buffer.subarray(0, length), stats };
  } finally {
    closeSync(fd);
  }
}

function tooLarge(path: string, maxBytes: number): Error {
  return fileError('EFBIG', `${path} is larger than ${maxBytes} bytes`);
}

function fileError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}
