// Reading a config file (sidecar config, gateway.yaml, inject.yaml) an operator names on the command line: bounded,
// regular files only, strictly UTF-8, one message shape. A path naming a FIFO blocked the start for ever, and one
// naming a device or a large file was read whole (/dev/zero: the process aborted out of memory).
import { MeshauthError } from '../errors/index.js';
import { readRegularFile } from '../platform/index.js';
import { fileErrnoMessage } from './file-errno.js';
import { decodeUtf8, invalidUtf8Text } from './utf8-text.js';

/** A config file is a few KiB. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/**
 * The file's text, or MESHAUTH_ERR_FILE_UNREADABLE `<file>: cannot read config file (not a regular file)` etc., or
 * MESHAUTH_ERR_CONFIG_INVALID `<file>: not valid UTF-8 (byte offset N, line L)…`.
 */
export function readConfigText(file: string): string {
  let bytes: Buffer;
  try {
    bytes = readRegularFile(file, MAX_CONFIG_BYTES).bytes;
  } catch (cause) {
    const why = fileErrnoMessage(cause);
    const problem =
      why === 'EFBIG' ? `config file is larger than ${MAX_CONFIG_BYTES} bytes` : `cannot read config file (${why})`;
    throw new MeshauthError('MESHAUTH_ERR_FILE_UNREADABLE', `${file}: ${problem}`, {
      reason: 'config_unreadable',
      cause,
    });
  }
  const decoded = decodeUtf8(bytes);
  if (!decoded.ok) {
    throw new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', `${file}: ${invalidUtf8Text(decoded)}`, {
      reason: 'config_not_utf8',
      detail: { file, line: decoded.line },
    });
  }
  return decoded.text;
}
