// The agent's two input files (`ca.bundle`, `ca.token`), read afresh at each use: a projected
// service-account token is rewritten by the kubelet, and an operator may replace the bundle or a join token.
// The token's content is a secret: it is never put into an error message or a log line.
import { fileErrnoText } from '../config/file-errno.js';
import { MeshauthError } from '../errors/index.js';
import type { TrustDomain } from '../identity/index.js';
import { parseCertificatesPemOnce, TrustBundle } from '../pki/index.js';
import { readRegularFile } from '../platform/index.js';

/** Projected SA tokens are a few KiB; refuse to read a file that cannot be a token into memory. */
const MAX_TOKEN_BYTES = 64 * 1024;
const MAX_BUNDLE_BYTES = 1024 * 1024;

export async function readBundleFile(path: string, trustDomain: TrustDomain): Promise<TrustBundle> {
  const text = readText(path, MAX_BUNDLE_BYTES, 'trust bundle');
  try {
    return new TrustBundle(trustDomain, parseCertificatesPemOnce(text));
  } catch (cause) {
    throw new MeshauthError('MESHAUTH_ERR_FILE_UNREADABLE', `trust bundle ${path} holds no valid PEM certificate`, {
      reason: 'bundle_invalid',
      cause,
    });
  }
}

/** The bootstrap credential: the file's trimmed content (a join token or a Kubernetes SA token). */
export async function readTokenFile(path: string): Promise<string> {
  const token = readText(path, MAX_TOKEN_BYTES, 'token').trim();
  if (token === '') {
    throw new MeshauthError('MESHAUTH_ERR_FILE_UNREADABLE', `token file ${path} is empty`, { reason: 'token_empty' });
  }
  return token;
}

function readText(path: string, maxBytes: number, what: string): string {
  try {
    return readRegularFile(path, maxBytes).bytes.toString('utf8');
  } catch (cause) {
    const code = (cause as { code?: unknown }).code;
    if (code === 'EFBIG') {
      throw new MeshauthError('MESHAUTH_ERR_FILE_UNREADABLE', `${what} file ${path} is larger than ${maxBytes} bytes`, {
        reason: 'too_large',
      });
    }
    // The shared readers' wording: ENOTREG is made up by readRegularFile, nothing a user can look up.
    const why = fileErrnoText(cause);
    const problem = why === 'not a regular file' ? why : `cannot be read (${why})`;
    throw new MeshauthError('MESHAUTH_ERR_FILE_UNREADABLE', `${what} file ${path}: ${problem}`, {
      reason: `${what.replace(' ', '_')}_unreadable`,
      cause,
    });
  }
}
