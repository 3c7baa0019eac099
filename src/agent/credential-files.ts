// The agent's two input files (SPEC §7 `ca.bundle`, `ca.token`), read afresh at each use: a projected
// service-account token is rewritten by the kubelet, and an operator may replace the bundle or a join token.
// The token's content is a secret: it is never put into an error message or a log line.
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { MeshauthError } from '../errors/index.js';
import type { TrustDomain } from '../identity/index.js';
import { parseCertificatesPemOnce, TrustBundle } from '../pki/index.js';

/** Projected SA tokens are a few KiB; refuse to read a file that cannot be a token into memory. */
const MAX_TOKEN_BYTES = 64 * 1024;
const MAX_BUNDLE_BYTES = 1024 * 1024;

export async function readBundleFile(path: string, trustDomain: TrustDomain): Promise<TrustBundle> {
  const text = await readText(path, MAX_BUNDLE_BYTES, 'trust bundle');
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
  const token = (await readText(path, MAX_TOKEN_BYTES, 'token')).trim();
  if (token === '') {
    throw new MeshauthError('MESHAUTH_ERR_FILE_UNREADABLE', `token file ${path} is empty`, { reason: 'token_empty' });
  }
  return token;
}

async function readText(path: string, maxBytes: number, what: string): Promise<string> {
  let data: Buffer | undefined;
  try {
    data = await readBounded(path, maxBytes);
  } catch (cause) {
    const code = (cause as { code?: unknown }).code;
    throw new MeshauthError('MESHAUTH_ERR_FILE_UNREADABLE', `${what} file ${path} cannot be read (${String(code)})`, {
      reason: `${what.replace(' ', '_')}_unreadable`,
      cause,
    });
  }
  if (data === undefined) {
    throw new MeshauthError('MESHAUTH_ERR_FILE_UNREADABLE', `${what} file ${path} is larger than ${maxBytes} bytes`, {
      reason: 'too_large',
    });
  }
  return data.toString('utf8');
}

/**
 * The file's bytes, or undefined past `maxBytes` (no more than maxBytes + 1 are read). Opened non-blocking and
 * refused unless it is a regular file: a FIFO at the path would otherwise hold a thread-pool thread until a writer
 * came (one per attempt, until the pool is gone), and a device would be read without end.
 */
async function readBounded(path: string, maxBytes: number): Promise<Buffer | undefined> {
  const file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stat = await file.stat();
    if (!stat.isFile()) throw Object.assign(new Error(`${path} is not a regular file`), { code: 'ENOTREG' });
    if (stat.size > maxBytes) return undefined;
    const buffer = Buffer.allocUnsafe(maxBytes + 1);
    let length = 0;
    // A regular file ends at its size (these files are replaced, not appended to): stop there rather than pay one
    // more thread-pool round trip to read the end.
    while (length < buffer.length) {
      const { bytesRead } = await file.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length === stat.size) break;
    }
    return length > maxBytes ? undefined : buffer.subarray(0, length);
  } finally {
    await file.close();
  }
}
