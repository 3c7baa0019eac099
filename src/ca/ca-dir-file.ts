// Reading one file of the CA directory (`--dir`, or `--out` for `ca init --k8s-secret`): an operator may have
// assembled it by hand or mounted it from a Secret, so a path in it may be anything. Bounded and regular files only,
// through the shared setting reader: a FIFO there blocked `ca serve` at start, a directory printed a bare EISDIR.
import { existsSync } from 'node:fs';
import { fileErrnoText } from '../config/file-errno.js';
import { readSettingFile } from '../config/read-setting-file.js';
import { MeshauthError } from '../errors/index.js';
import type { CaPaths } from './ca-files.js';

/**
 * The file's text; MESHAUTH_ERR_CA_NOT_INITIALIZED when it is missing (the directory holds no CA yet), else
 * MESHAUTH_ERR_FILE_UNREADABLE `<flag>: CA file <path>: not a regular file` (or `cannot be read (EACCES)`…).
 */
export function readCaFile(paths: CaPaths, file: string, flag = '--dir'): string {
  const text = readCaFileIfPresent(file, flag);
  if (text === undefined) {
    // A half-made CA (a `ca init` stopped midway) is missing files too: the same command repairs it, without --force.
    const unfinished = existsSync(paths.initMarker) ? '; a `meshauth ca init` there has not finished' : '';
    throw new MeshauthError(
      'MESHAUTH_ERR_CA_NOT_INITIALIZED',
      `no CA in ${paths.dir} (${file} is missing${unfinished}): run \`meshauth ca init --trust-domain <td> --dir ` +
        `${paths.dir}\`${unfinished === '' ? ' first' : ' again'}`,
      { reason: 'missing_file' },
    );
  }
  return text;
}

/** The file's text, or undefined when nothing is at the path; any other problem throws as readCaFile does. */
export function readCaFileIfPresent(file: string, flag = '--dir'): string | undefined {
  try {
    return readSettingFile(file, { setting: flag, what: 'CA file', reason: 'ca_file_unreadable' });
  } catch (error) {
    if (error instanceof MeshauthError && fileErrnoText(error.cause) === 'ENOENT') return undefined;
    throw error;
  }
}
