// The content of one CA directory file, parsed: a file that does not parse (a bad copy out of a vault, a Secret edited
// by hand, a truncated file) is refused naming the directory and the file. Parsing only: reading is ca-dir-file.ts.
import { basename } from 'node:path';
import { errorMessage, MeshauthError } from '../errors/index.js';

/** What a certificate file of the CA directory must hold. */
export const CA_CERTIFICATES = 'PEM CERTIFICATE blocks';
/** What a key file of the CA directory must hold. */
export const CA_PRIVATE_KEY = 'one PEM private key (P-256, Ed25519 or RSA-2048)';

/**
 * `parse()` of the text of `file`, sync or async; whatever it throws or rejects with becomes
 * MESHAUTH_ERR_FILE_UNREADABLE (reason `ca_file_damaged`). The parsers' own sentences ("private key cannot be parsed",
 * OpenSSL's decoder text) named no file, and their codes sent the operator to the wrong fix (`--key-type`). Exit 2:
 * running the command again cannot help, only the file can.
 */
export function parsedCaFile<T>(dir: string, file: string, expected: string, parse: () => T): T {
  let parsed: T;
  try {
    parsed = parse();
  } catch (error) {
    throw damagedCaFile(dir, file, expected, error);
  }
  if (parsed instanceof Promise) {
    return parsed.catch((error: unknown) => {
      throw damagedCaFile(dir, file, expected, error);
    }) as T;
  }
  return parsed;
}

function damagedCaFile(dir: string, file: string, expected: string, error: unknown): MeshauthError {
  return new MeshauthError(
    'MESHAUTH_ERR_FILE_UNREADABLE',
    `CA directory ${dir} is inconsistent: ${basename(file)} must hold ${expected} (${errorMessage(error)}); ` +
      'restore it from where the directory was copied (a backup, the CA Secret)',
    { reason: 'ca_file_damaged', cause: error },
  );
}
