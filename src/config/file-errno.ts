// How a message names why a file could not be read: the errno Node gives (ENOENT, EACCES…), except the codes
// readRegularFile makes up itself, which no user can look up.

/** `not a regular file` for ENOTREG; the error's own errno code otherwise (`error` when it has none). */
export function fileErrnoText(error: unknown): string {
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : 'error';
  return code === 'ENOTREG' ? 'not a regular file' : code;
}
