// A CA file written on a full disk: the write(2) fails with ENOSPC after open() succeeded, and Node's error names no
// path, so `ca issue`/`ca rotate`/`ca token create` printed Node's raw "ENOSPC: no space left on device, write" (no
// code, no file). The error now names the file the caller asked for, which the CLI turns into
// MESHAUTH_ERR_FILE_UNWRITABLE naming it; nothing is left behind and the old file stays.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('node:fs/promises', async (original) =>
  (await import('../../helpers/full-disk-fs.js')).fullDiskFsPromises(await original()),
);
const { fullAtWrite } = await import('../../helpers/full-disk-fs.js');

const { writeFileAtomic } = await import('../../../src/ca/ca-files.js');
const { exitCodeFor, formatError, fromFileSystemError } = await import('../../../src/cli/run.js');
const { withRotationLock } = await import('../../../src/ca/rotation-lock.js');

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'meshauth-ca-files-full-'));
});
afterEach(() => {
  fullAtWrite.prefix = undefined;
  rmSync(root, { recursive: true, force: true });
});

describe('CA files on a full disk', () => {
  it('fail/writeFileAtomic: ENOSPC names the file; the old one stays, no temporary file is left', async () => {
    const file = join(root, 'bundle.pem');
    writeFileSync(file, 'OLD\n');
    fullAtWrite.prefix = root;
    const error = await writeFileAtomic(file, 'NEW\n', 0o644).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'ENOSPC', path: file });
    const converted = fromFileSystemError(error);
    expect(formatError(converted)).toContain(file);
    expect(formatError(converted)).toContain('MESHAUTH_ERR_FILE_UNWRITABLE');
    expect(exitCodeFor(converted)).toBe(1);
    expect(readFileSync(file, 'utf8')).toBe('OLD\n');
    expect(readdirSync(root)).toEqual(['bundle.pem']);
  });

  // `ca issue` takes the directory's lock only to wait out a rotation: it reads the CA and writes its --out files
  // elsewhere, which it did on a full CA disk before it took the lock.
  it('ok/withRotationLock on a full CA directory: an action that only reads it runs; one that writes names its file', async () => {
    fullAtWrite.prefix = root;
    await expect(withRotationLock(root, async () => 'issued')).resolves.toBe('issued');
    const key = join(root, 'intermediate.key');
    await expect(withRotationLock(root, () => writeFileAtomic(key, 'NEW\n', 0o600))).rejects.toMatchObject({
      code: 'ENOSPC',
      path: key,
    });
    expect(readdirSync(root)).toEqual([]);
  });
});
