// A file that is not there, named by a relative path, says where it was looked for: a config file's paths are read
// from the current directory, not the config file's. Found by a new user's walk through the README: `meshauth sidecar
// --config ../sidecar.yaml` said `cannot read policy file policy.yaml: ENOENT` with policy.yaml right beside it.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readPolicyText } from '../../../src/authz/load-policy-file.js';
import { fileErrnoMessage, fileErrnoText } from '../../../src/config/file-errno.js';
import { readRegularFile } from '../../../src/platform/index.js';

function failure(path: string): unknown {
  try {
    readRegularFile(path, 1024);
  } catch (error) {
    return error;
  }
  throw new Error(`${path} was read`);
}

describe('fileErrnoMessage', () => {
  it('fail/a missing relative path names the directory it was read from', () => {
    expect(fileErrnoMessage(failure('no-such-dir/policy.yaml'))).toBe(
      `ENOENT; a relative path is read from the current directory, ${process.cwd()}`,
    );
  });
  it('ok/a missing absolute path keeps the bare errno', () => {
    expect(fileErrnoMessage(failure(join(process.cwd(), 'no-such-dir', 'policy.yaml')))).toBe('ENOENT');
  });
  it('ok/other errnos stay as they are', () => {
    expect(fileErrnoMessage(failure('/'))).toBe('not a regular file');
    // Decisions read the bare code (a CA directory's missing file is not an error).
    expect(fileErrnoText(failure('no-such-dir/policy.yaml'))).toBe('ENOENT');
  });
  it('fail/the policy file message carries it', async () => {
    await expect(readPolicyText('no-such-dir/policy.yaml')).rejects.toThrow(
      `cannot read policy file no-such-dir/policy.yaml: ENOENT; a relative path is read from the current directory, ${process.cwd()}`,
    );
  });
});
