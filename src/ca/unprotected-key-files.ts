// The CA's private key files that users other than the CA may read or write, told at `ca serve` start the way ssh
// tells of an unprotected key, but still used: a Kubernetes Secret mounted without `defaultMode` is 0644, and
// refusing it would stop every replica at its next restart. Modes are those of the files the paths name (a Secret's
// keys are symlinks into `..data`). It decides and reports; it never changes a mode.
import { stat } from 'node:fs/promises';
import type { Logger } from '../telemetry/index.js';
import { caPaths, privateKeyFiles } from './ca-files.js';

/** A key file others may read or write: its mode, and what gives it the mode it should have. */
export interface UnprotectedKeyFile {
  readonly file: string;
  /** Octal, e.g. `0644`. */
  readonly mode: string;
  readonly fix: string;
}

/**
 * Whether a key file with this mode and owner lets anyone but the CA read or write it, and the fix; undefined when
 * it does not. The CA's own file must be 0600 or less (`ca init` writes them so). A file of another owner is how a
 * mounted Secret reaches the CA (root's, with the pod's fsGroup): its group may read it, as PostgreSQL allows for a
 * root-owned key, so the shipped 0440 mount is fine.
 */
export function keyFileProtection(
  file: string,
  stats: { readonly mode: number; readonly uid: number },
  processUid: number,
): UnprotectedKeyFile | undefined {
  const own = stats.uid === processUid;
  const beyond = stats.mode & (own ? 0o066 : 0o026);
  if (beyond === 0) return undefined;
  return {
    file,
    mode: `0${(stats.mode & 0o7777).toString(8).padStart(3, '0')}`,
    fix: own
      ? `chmod 600 ${file}`
      : `let only its owner and the CA's group read it (chmod 640 ${file} as its owner; for a Kubernetes Secret ` +
        'volume, defaultMode: 0440 with the pod fsGroup, as deploy/base/ca.yaml mounts it)',
  };
}

/**
 * The key files present in CA directory `dir` that others than `uid` (default: this process's user) may read or
 * write. None where modes mean nothing (Windows).
 */
export async function unprotectedKeyFiles(dir: string, uid = process.getuid?.()): Promise<UnprotectedKeyFile[]> {
  if (uid === undefined || process.platform === 'win32') return [];
  const found: UnprotectedKeyFile[] = [];
  for (const file of privateKeyFiles(caPaths(dir))) {
    let stats: { mode: number; uid: number };
    try {
      stats = await stat(file);
    } catch {
      continue; // missing, or not this check's to report: the load that reads it says why
    }
    const unprotected = keyFileProtection(file, stats, uid);
    if (unprotected !== undefined) found.push(unprotected);
  }
  return found;
}

/** One warn line per unprotected key file of `dir` (event `ca_key_file_unprotected`). */
export async function warnUnprotectedKeyFiles(dir: string, logger: Logger): Promise<void> {
  for (const { file, mode, fix } of await unprotectedKeyFiles(dir)) {
    logger.warn(
      { event: 'ca_key_file_unprotected', file, mode, fix },
      'a private key of the CA may be read or written by users other than the CA: whoever reads it can sign ' +
        'certificates or tokens as the CA; it is used, but fix its mode',
    );
  }
}
