// Reading a file whose path an operator gave (a config key or a command-line flag): a secret, a key, a certificate,
// a token. One bounded, regular-file-only, strictly UTF-8 read (platform/regular-file.ts, utf8-text.ts) and one
// message shape for every such file, so a wrong path says which setting named it and what is wrong, never Node's
// raw errno sentence.
// The content may be a secret: it is never part of a message, and neither is a "path" that is a secret itself
// (secret-path.ts).
import { MeshauthError } from '../errors/index.js';
import { readRegularFile } from '../platform/index.js';
import { fileProblemText } from './file-errno.js';
import { shownCause, shownPath } from './secret-path.js';
import { decodeUtf8, invalidUtf8Text } from './utf8-text.js';

export interface SettingFile {
  /** The config key or flag that named the path (`session.keys[0]`, `--p12-password-file`), first in the message. */
  readonly setting: string;
  /** What the file holds, in words (`session key file`, `client secret file`). */
  readonly what: string;
  /** Larger is refused (default 256 KiB): a device at the path would otherwise be read without end. */
  readonly maxBytes?: number;
  /** MeshauthError.reason, for the log and metrics. */
  readonly reason: string;
}

/** A secret, a key, a certificate chain or a token is a few KiB. */
export const MAX_SETTING_FILE_BYTES = 256 * 1024;

/**
 * The file's text, or MESHAUTH_ERR_FILE_UNREADABLE `<setting>: <what> <path>: not a regular file` (or `larger than
 * N bytes`, `not valid UTF-8 (byte offset N, line L)…`, or `cannot be read (ENOENT)` with the errno a user can look
 * up). A path that is a credential itself is shown as `<value withheld: not a path>`. The CLI exits 2 on it.
 */
export function readSettingFile(path: string, file: SettingFile): string {
  const maxBytes = file.maxBytes ?? MAX_SETTING_FILE_BYTES;
  let bytes: Buffer;
  try {
    bytes = readRegularFile(path, maxBytes).bytes;
  } catch (cause) {
    // A withheld path's cause carries its errno alone, and so does the message (no relative-path hint about it).
    throw refusal(path, file, fileProblemText(shownCause(path, cause), maxBytes), cause);
  }
  const decoded = decodeUtf8(bytes);
  if (!decoded.ok) throw refusal(path, file, invalidUtf8Text(decoded));
  return decoded.text;
}

function refusal(path: string, file: SettingFile, problem: string, cause?: unknown): MeshauthError {
  const shown = shownPath(path);
  return new MeshauthError('MESHAUTH_ERR_FILE_UNREADABLE', `${file.setting}: ${file.what} ${shown}: ${problem}`, {
    reason: file.reason,
    detail: { key: file.setting },
    ...(cause === undefined ? {} : { cause: shownCause(path, cause) }),
  });
}
