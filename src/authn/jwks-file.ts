// A JWKS kept in a local file (`jwksUri: file:///etc/meshauth/jwks/jwks.json`), e.g. a mounted ConfigMap.
// Kubernetes updates a ConfigMap volume by swapping a symlink (`..data` → a new timestamped directory), which an
// fs.watch on the file does not report reliably; a stat(2) of the resolved path on a short interval notices every
// kind of replacement — an atomic rename, a symlink swap, an in-place write — for one system call per check.
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type RegularFile, readRegularFile } from '../platform/index.js';

export type JwksFileFailure = 'unreadable' | 'too_large' | 'invalid_json';

export class JwksFileError extends Error {
  override readonly name = 'JwksFileError';
  constructor(
    readonly failure: JwksFileFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isFileUri(uri: string): boolean {
  return /^file:/i.test(uri);
}

/** Why `uri` is not a usable JWKS file URI (`file:///absolute/path`), or undefined when it is. */
export function checkJwksFileUri(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return `${JSON.stringify(uri)} is not a URL`;
  }
  if (url.protocol !== 'file:') return `${url.protocol} is not a file URL`;
  // file://host/path would name another machine's file (SMB on Windows); only the local form is meaningful.
  if (url.host !== '') return 'a file URL must not name a host: use file:///absolute/path.json';
  if (url.search !== '' || url.hash !== '') return 'a file URL must not carry a query or a fragment';
  try {
    fileURLToPath(url);
  } catch (error) {
    return (error as Error).message;
  }
  return undefined;
}

/** The local path of a `file:` JWKS URI (checked with checkJwksFileUri first). */
export function jwksFilePath(uri: string): string {
  return fileURLToPath(uri);
}

/**
 * What identifies one version of the file: device, inode, size and both times of the file the path resolves to
 * (stat follows symlinks, so a swapped link shows a new inode even when size and times happen to match).
 */
export async function jwksFileFingerprint(path: string): Promise<string> {
  try {
    // In this thread: the CA checks once per service-account token, and a stat of a local file costs ~4 µs here
    // against ~40 µs of CPU as a promise through libuv's pool (a 10,000-pod restart checks 10,000 times).
    return fingerprintOf(statSync(path, { bigint: true }));
  } catch (error) {
    throw unreadable(path, error);
  }
}

/**
 * Reads and parses the file, at most `maxBytes`. The fingerprint returned is that of the file actually read (fstat
 * of the open descriptor), so a replacement racing with the read is seen by the next check.
 */
export async function readJwksFile(
  path: string,
  maxBytes: number,
): Promise<{ document: unknown; fingerprint: string }> {
  let file: RegularFile;
  try {
    file = readRegularFile(path, maxBytes);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EFBIG') throw new JwksFileError('too_large', (error as Error).message);
    if (code === 'ENOTREG') throw new JwksFileError('unreadable', (error as Error).message);
    throw unreadable(path, error);
  }
  let document: unknown;
  try {
    document = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(file.bytes));
  } catch (cause) {
    throw new JwksFileError('invalid_json', `${path} is not JSON`, { cause });
  }
  return { document, fingerprint: fingerprintOf(file.stats) };
}

function fingerprintOf(info: { dev: bigint; ino: bigint; size: bigint; mtimeNs: bigint; ctimeNs: bigint }): string {
  return `${info.dev}:${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
}

function unreadable(path: string, error: unknown): JwksFileError {
  const code = (error as NodeJS.ErrnoException).code;
  return new JwksFileError('unreadable', `${path}: ${code ?? (error as Error).message}`, { cause: error });
}
