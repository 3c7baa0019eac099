// Proves, before a command spends anything at the CA (a single-use join token, an issuance), that the directory of a
// file it will replace takes new files: the pair is staged beside its targets, so a directory that refuses a probe
// file refuses them too. It must not touch the target files themselves.
import { randomBytes } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * Creates and removes a hidden empty file beside each of `files`, in order. A refusal is reported as a write of the
 * file named, the way the write itself would have been (`cannot write web.key: EACCES (write)`): the probe's name
 * means nothing to the user.
 */
export async function assertCanWriteBeside(files: readonly string[]): Promise<void> {
  const probed = new Set<string>();
  for (const file of files) {
    const directory = dirname(file);
    if (probed.has(directory)) continue;
    probed.add(directory);
    const probe = join(directory, `.${randomBytes(6).toString('hex')}.probe`);
    try {
      await (await open(probe, 'wx', 0o600)).close();
    } catch (error) {
      throw Object.assign(error as NodeJS.ErrnoException, { path: file, syscall: 'write' });
    }
    await rm(probe, { force: true });
  }
}
