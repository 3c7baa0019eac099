// fromFileSystemError + exitCodeFor: a write that failed keeps MESHAUTH_ERR_FILE_UNWRITABLE, but the exit code says
// whose fault it was: 2 for a path the user can change (under a file, missing parent, no permission), 1 for the
// machine failing at run time (a full disk, an I/O error), which no other input would have avoided.
import { describe, expect, it } from 'vitest';
import { EXIT_FAILURE, EXIT_USAGE, exitCodeFor, formatError, fromFileSystemError } from '../../../src/cli/run.js';
import { isMeshauthError, MeshauthError } from '../../../src/errors/index.js';

function errno(code: string, syscall: string, path = '/var/lib/meshauth/ca'): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: failed, ${syscall} '${path}'`), { code, syscall, path });
}

describe('fromFileSystemError / exitCodeFor', () => {
  it.each([
    ['EEXIST', 'mkdir'],
    ['ENOTDIR', 'mkdir'],
    ['ENOENT', 'rename'],
    ['EACCES', 'rename'],
    ['EPERM', 'unlink'],
    ['EISDIR', 'rename'],
    ['EROFS', 'mkdir'],
  ])('ok/%s (%s) is bad input: FILE_UNWRITABLE, exit 2', (code, syscall) => {
    const error = fromFileSystemError(errno(code, syscall));
    expect(isMeshauthError(error, 'MESHAUTH_ERR_FILE_UNWRITABLE')).toBe(true);
    expect(exitCodeFor(error)).toBe(EXIT_USAGE);
  });

  it.each([
    ['ENOSPC', 'rename'],
    ['EDQUOT', 'link'],
    ['EIO', 'rename'],
    ['EMFILE', 'mkdir'],
  ])('fail/%s (%s) is a runtime failure: FILE_UNWRITABLE naming the path, exit 1', (code, syscall) => {
    const error = fromFileSystemError(errno(code, syscall));
    expect(isMeshauthError(error, 'MESHAUTH_ERR_FILE_UNWRITABLE')).toBe(true);
    expect(formatError(error)).toBe(
      `meshauth: cannot write /var/lib/meshauth/ca: ${code} (${syscall}) [MESHAUTH_ERR_FILE_UNWRITABLE]`,
    );
    expect(exitCodeFor(error)).toBe(EXIT_FAILURE);
  });

  it('ok/a FILE_UNWRITABLE a command raised itself (no errno) stays exit 2', () => {
    expect(exitCodeFor(new MeshauthError('MESHAUTH_ERR_FILE_UNWRITABLE', 'cannot write x'))).toBe(EXIT_USAGE);
  });

  it('ok/an errno without a path or on a read-side syscall is left alone (exit 1)', () => {
    const noPath = Object.assign(new Error('ENOSPC: no space left on device, write'), {
      code: 'ENOSPC',
      syscall: 'write',
    });
    expect(fromFileSystemError(noPath)).toBe(noPath);
    const read = errno('EIO', 'read');
    expect(fromFileSystemError(read)).toBe(read);
    expect(exitCodeFor(read)).toBe(EXIT_FAILURE);
  });
});
