// What `meshauth inject` and `uninject` read: a manifest file, a pipe (`-f <(kustomize build)`) or stdin (`-f -`),
// each to its end but never past a bound. Refusals are MESHAUTH_ERR_FILE_UNREADABLE naming the input (exit 2, as
// every other unreadable manifest). No parsing here.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { fileErrnoText } from '../config/file-errno.js';
import { MeshauthError } from '../errors/index.js';

/**
 * A manifest stream is large (a kustomize build with CRDs runs to a few MiB), but not this: past it the input is
 * not a manifest, and reading on would only fill the memory.
 */
export const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;
const CHUNK_BYTES = 64 * 1024;
const MIB = 1024 * 1024;

/**
 * The manifest named by `-f` (`-`: stdin, process.stdin unless another stream is given), as text. `limit` is the most
 * bytes read before the input is refused.
 */
export async function readManifestInput(
  file: string,
  limit = MAX_MANIFEST_BYTES,
  stdin?: AsyncIterable<Buffer | string>,
): Promise<string> {
  // process.stdin only when it is the input: the getter opens the descriptor.
  if (file === '-') return readManifestStream(stdin ?? process.stdin, 'stdin', limit);
  return readManifestFile(file, limit);
}

/**
 * Stdin, read as a stream: read synchronously it could be a non-blocking pipe (EAGAIN). Throwing out of the loop
 * ends the stream's iterator, which destroys it: nothing past the limit is read.
 */
export async function readManifestStream(
  stream: AsyncIterable<Buffer | string>,
  name: string,
  limit = MAX_MANIFEST_BYTES,
): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    total += bytes.length;
    if (total > limit) throw tooLarge(name, limit);
    chunks.push(bytes);
  }
  return Buffer.concat(chunks, total).toString('utf8');
}

/**
 * Not the bounded regular-file read of a setting: `-f <(kustomize build)` hands over a pipe, which is read to its end
 * (a FIFO blocks the open until its writer comes, as the shell's process substitution expects). A directory or a
 * device is refused after the open, by what the descriptor is: /dev/zero would be read without end.
 */
export function readManifestFile(file: string, limit = MAX_MANIFEST_BYTES): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (cause) {
    throw unreadable(file, `cannot read manifest file (${fileErrnoText(cause)})`, cause);
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile() && !stats.isFIFO())
      throw unreadable(file, 'cannot read manifest file (not a regular file or a pipe)');
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
      let bytesRead: number;
      try {
        bytesRead = readSync(fd, chunk, 0, CHUNK_BYTES, null);
      } catch (cause) {
        throw unreadable(file, `cannot read manifest file (${fileErrnoText(cause)})`, cause);
      }
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > limit) throw tooLarge(file, limit);
      chunks.push(chunk.subarray(0, bytesRead));
    }
    return Buffer.concat(chunks, total).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

function tooLarge(name: string, limit: number): MeshauthError {
  const size = limit % MIB === 0 ? `${limit} bytes (${limit / MIB} MiB)` : `${limit} bytes`;
  return new MeshauthError(
    'MESHAUTH_ERR_FILE_UNREADABLE',
    `${name}: manifest is larger than ${size}, the most meshauth reads: split it into smaller inputs`,
    { reason: 'manifest_too_large' },
  );
}

function unreadable(file: string, problem: string, cause?: unknown): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_FILE_UNREADABLE', `${file}: ${problem}`, {
    reason: 'manifest_unreadable',
    ...(cause === undefined ? {} : { cause }),
  });
}
