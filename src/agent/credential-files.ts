// The agent's two input files (`ca.bundle`, `ca.token`), read afresh at each use: a projected
// service-account token is rewritten by the kubelet, and an operator may replace the bundle or a join token.
// The token's content is a secret: it is never put into an error message or a log line, and neither is a "path" that
// is the token itself (`--token-file <the token>` is not refused by a schema): such a path is withheld
// (config/secret-path.ts), from the message and from Node's error kept as its cause.
import {
  distinctCertificateBlocks,
  MAX_BUNDLE_BYTES,
  MAX_BUNDLE_CERTIFICATES,
  TOO_MANY_CERTIFICATES_FIX,
} from '../config/bundle-trust-domain.js';
import { fileProblemText } from '../config/file-errno.js';
import { shownCause, shownPath } from '../config/secret-path.js';
import { MeshauthError } from '../errors/index.js';
import type { TrustDomain } from '../identity/index.js';
import { parseCertificatesPemOnce, TrustBundle } from '../pki/index.js';
import { readRegularFile } from '../platform/index.js';

/** Projected SA tokens are a few KiB; refuse to read a file that cannot be a token into memory. */
const MAX_TOKEN_BYTES = 64 * 1024;

/** The trust bundle file's roots. `setting` (`ca.bundle`) leads the message when the config named the file. */
export async function readBundleFile(path: string, trustDomain: TrustDomain, setting?: string): Promise<TrustBundle> {
  const { text } = readText(path, MAX_BUNDLE_BYTES, 'trust bundle', setting);
  // Counted before parsing (see MAX_BUNDLE_CERTIFICATES); also checked at start, but the file may change since.
  const blocks = distinctCertificateBlocks(text);
  const count = blocks.length;
  if (count > MAX_BUNDLE_CERTIFICATES) {
    throw new MeshauthError(
      'MESHAUTH_ERR_FILE_UNREADABLE',
      `${named(setting)}trust bundle ${shownPath(path)} holds ${count} certificates, more than ` +
        `${MAX_BUNDLE_CERTIFICATES}: ${TOO_MANY_CERTIFICATES_FIX}`,
      { reason: 'too_large', ...(setting === undefined ? {} : { detail: { key: setting } }) },
    );
  }
  try {
    return new TrustBundle(trustDomain, parseCertificatesPemOnce(blocks.join('\n')));
  } catch (cause) {
    throw new MeshauthError(
      'MESHAUTH_ERR_FILE_UNREADABLE',
      `${named(setting)}trust bundle ${shownPath(path)} holds no valid PEM certificate`,
      { reason: 'bundle_invalid', cause },
    );
  }
}

/**
 * The bootstrap credential: the file's trimmed content (a join token or a Kubernetes SA token). `setting` (a flag
 * such as `--token-file`, or the config key `ca.token`) leads the message.
 */
export async function readTokenFile(path: string, setting?: string): Promise<string> {
  return (await readTokenFileWithMode(path, setting)).token;
}

/** readTokenFile, with the permission bits of the file read (the agent warns about a token others may read). */
export async function readTokenFileWithMode(path: string, setting?: string): Promise<{ token: string; mode: number }> {
  const { text, mode } = readText(path, MAX_TOKEN_BYTES, 'token', setting);
  const token = text.trim();
  if (token === '') {
    throw new MeshauthError('MESHAUTH_ERR_FILE_UNREADABLE', `${named(setting)}token file ${shownPath(path)}: empty`, {
      reason: 'token_empty',
    });
  }
  return { token, mode };
}

/** The shared readers' message shape (config/read-setting-file.ts), with the reasons the agent counts. */
function readText(path: string, maxBytes: number, what: string, setting?: string): { text: string; mode: number } {
  try {
    const file = readRegularFile(path, maxBytes);
    return { text: file.bytes.toString('utf8'), mode: Number(file.stats.mode & 0o7777n) };
  } catch (cause) {
    const tooLarge = (cause as { code?: unknown }).code === 'EFBIG';
    const shown = shownCause(path, cause); // a withheld path's errno alone, in the message and the cause alike
    throw new MeshauthError(
      'MESHAUTH_ERR_FILE_UNREADABLE',
      `${named(setting)}${what} file ${shownPath(path)}: ${fileProblemText(shown, maxBytes)}`,
      {
        reason: tooLarge ? 'too_large' : `${what.replace(' ', '_')}_unreadable`,
        ...(setting === undefined ? {} : { detail: { key: setting } }),
        cause: shown,
      },
    );
  }
}

function named(setting: string | undefined): string {
  return setting === undefined ? '' : `${setting}: `;
}
