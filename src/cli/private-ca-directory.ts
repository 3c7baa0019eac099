// Refuses to create a CA in a directory that other users may write: whoever can rename files there can put their own
// root in bundle.pem (which `ca serve` hands to every agent) or their own intermediate beside it, and so become the
// CA, whatever the modes of the key files. It must not change the directory: it may be /tmp or someone's shared one.
import { stat } from 'node:fs/promises';
import { MeshauthError } from '../errors/index.js';

/**
 * Throws MESHAUTH_ERR_FILE_UNWRITABLE (exit 2) when `dir` is an existing directory writable by its group or by
 * everyone. A missing one is fine (`ca init` makes it 0700), and anything else is left to the write to report.
 */
export async function refuseSharedCaDirectory(dir: string): Promise<void> {
  let mode: number;
  try {
    const stats = await stat(dir);
    if (!stats.isDirectory()) return;
    mode = stats.mode;
  } catch {
    return;
  }
  if ((mode & 0o022) === 0) return;
  const octal = `0${(mode & 0o7777).toString(8)}`;
  const who = (mode & 0o002) !== 0 ? 'everyone' : 'its group';
  throw new MeshauthError(
    'MESHAUTH_ERR_FILE_UNWRITABLE',
    `cannot create a CA in ${dir}: the directory is writable by ${who} (mode ${octal}), and whoever can write there ` +
      `can swap bundle.pem or the intermediate and so become the CA: use a directory only you can write ` +
      `(chmod go-w ${dir}), or a new --dir, which ca init creates 0700`,
    { reason: 'ca_dir_shared' },
  );
}
