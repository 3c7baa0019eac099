// How a message names why a file could not be read: the errno Node gives (ENOENT, EACCES…), except the codes
// readRegularFile makes up itself, which no user can look up.
import { isAbsolute } from 'node:path';

/** `not a regular file` for ENOTREG; the error's own errno code otherwise (`error` when it has none). */
export function fileErrnoText(error: unknown): string {
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : 'error';
  return code === 'ENOTREG' ? 'not a regular file' : code;
}

/**
 * fileErrnoText for a message: a relative path that does not exist also says where it was looked for. A config
 * file's paths are read from the current directory, not the config file's, and a user running from elsewhere sees
 * the file right beside the config.
 */
export function fileErrnoMessage(error: unknown): string {
  const why = fileErrnoText(error);
  const path = typeof error === 'object' && error !== null && 'path' in error ? String(error.path) : '';
  if (why !== 'ENOENT' || path === '' || isAbsolute(path)) return why;
  return `ENOENT; a relative path is read from the current directory, ${process.cwd()}`;
}

/**
 * Why a bounded read of an operator's file (readRegularFile) refused, as the tail of one message shape:
 * `not a regular file`, `larger than N bytes`, or `cannot be read (ENOENT)` with an errno a user can look up.
 */
export function fileProblemText(error: unknown, maxBytes: number): string {
  const why = fileErrnoMessage(error);
  if (why === 'not a regular file') return why;
  if (why === 'EFBIG') return `larger than ${maxBytes} bytes`;
  return `cannot be read (${why})`;
}
