// The --out PREFIX of `cert request` and `ca issue`: where the new pair PREFIX.key and PREFIX.crt goes, in a directory
// made for it when missing and taken back when the command writes nothing there. It must not decide what is written.
import { basename, dirname } from 'node:path';
import { MeshauthError } from '../errors/index.js';
import { makeKeyDirectory, removeEmptyDirectories } from './key-pair-files.js';
import { type KeyPairLock, sayWaiting, withKeyPairLock } from './key-pair-lock.js';

/**
 * `--out` of `ca issue` and `cert request` is a path prefix that must end in a file name. `--out certs/` (meant as a
 * directory) failed on a temporary file's random name, and `--out ""` wrote hidden files `.crt` and `.key`.
 */
export function checkOutPrefix(prefix: string): string {
  if (prefix === '' || prefix.endsWith('/') || basename(prefix) === '.' || basename(prefix) === '..') {
    throw new MeshauthError(
      'MESHAUTH_ERR_USAGE',
      `--out ${JSON.stringify(prefix)} has no file name: it is a path prefix (--out certs/web writes certs/web.crt and certs/web.key)`,
      { reason: 'usage' },
    );
  }
  return prefix;
}

/**
 * Runs `write` under the lock of the pair at `prefix`, once its directory is made: the lock file goes in it. When
 * `write` fails, the directories this run made are removed while empty (the lock is gone by then), so a command that
 * wrote nothing leaves nothing behind: a failed `ca issue` (a full disk, a lock it could not take) used to leave them.
 * Another run with the same --out may do so just after this one found the directory: the lock attempt then makes it
 * again (and this run owns what it made), rather than failing on the lock or writing without it.
 */
export async function writeAtOutPrefix<T>(prefix: string, write: (lock: KeyPairLock) => Promise<T>): Promise<T> {
  const keyFile = `${prefix}.key`;
  const dir = dirname(prefix);
  let created = await makeKeyDirectory(dir);
  const remakeDirectory = async () => {
    // Innermost first, as removeEmptyDirectories takes them: all are `dir` or its parents in the same spelling.
    const made = [...created, ...(await makeKeyDirectory(dir))];
    created = [...new Set(made)].sort((a, b) => b.length - a.length);
  };
  try {
    return await withKeyPairLock(keyFile, write, { onWait: sayWaiting(keyFile), remakeDirectory });
  } catch (error) {
    await removeEmptyDirectories(created);
    throw error;
  }
}
