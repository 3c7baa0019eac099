// How `cert request` and `cert renew` put a new key and chain where the files of the workload are. Every file is
// staged complete and fsync'd next to its target before the first is replaced, so a failure to write any of them (a
// full disk, a directory that takes no new file) replaces none. A replaced regular file keeps its owner, group and
// mode: the CLI is often run as root for an app that runs as its own user and must still read its key. Only in a
// directory no one but its owner can write: elsewhere (/tmp, a shared directory) anyone could have put the file there
// first, and taking its owner or mode would hand them the new key. A symlink at a target is replaced, never followed,
// and lends nothing.
import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { type FileHandle, lstat, open, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { MeshauthError } from '../errors/index.js';

export interface FileToReplace {
  readonly path: string;
  readonly data: string;
  /** The mode of a new file; a replaced regular file keeps its own. */
  readonly mode: number;
}

/** Replaces `files` in order, each by a rename: none of them when one cannot be staged. */
export async function replaceFiles(files: readonly FileToReplace[]): Promise<void> {
  const staged: string[] = [];
  try {
    for (const file of files) staged.push(await stage(file));
    for (const [index, file] of files.entries()) await rename(staged[index] as string, file.path);
  } catch (error) {
    await Promise.all(staged.map((tmp) => rm(tmp, { force: true })));
    throw error;
  }
}

/** A complete, fsync'd temporary file next to `file.path`, with the owner, group and mode the target will have. */
async function stage(file: FileToReplace): Promise<string> {
  const replaced = await regularFileAt(file.path);
  const tmp = join(dirname(file.path), `.${randomBytes(6).toString('hex')}.tmp`);
  let handle: FileHandle;
  try {
    // 0600 until the owner and mode are set: nobody else reads the new key in between.
    handle = await open(tmp, 'wx', 0o600);
  } catch (error) {
    // A directory that cannot take the file (read-only, not writable by this user): reported as writing the file the
    // caller named. The temporary name means nothing to the user, and the CLI reads an `open` failure as a possible
    // read, leaving it unconverted (Node's raw text, exit 1, no code).
    throw Object.assign(error as NodeJS.ErrnoException, { path: file.path, syscall: 'write' });
  }
  try {
    await handle.writeFile(file.data);
    if (replaced !== undefined) await keepOwner(handle, file.path, replaced);
    // After chown, which clears set-id bits; an explicit chmod because the umask narrowed the mode given to open().
    await handle.chmod(replaced === undefined ? file.mode : replaced.mode & 0o777);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(tmp, { force: true });
    throw error;
  }
  await handle.close();
  return tmp;
}

/**
 * The stats of the regular file at `path` (not following a symlink) whose owner, group and mode the new file takes;
 * undefined when there is none, or when its directory is writable by its group or by everyone.
 */
async function regularFileAt(path: string): Promise<Stats | undefined> {
  let stats: Stats;
  let directory: Stats;
  try {
    stats = await lstat(path);
    directory = await stat(dirname(path));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw Object.assign(error as NodeJS.ErrnoException, { path, syscall: 'write' });
  }
  return stats.isFile() && (directory.mode & 0o022) === 0 ? stats : undefined;
}

/**
 * Gives the staged file the owner and group of the file it replaces. A user who may not (only root may give a file
 * away, and only a member may give it a group) is refused before anything is replaced: a file the app's user can no
 * longer read would take the app down at its next reload, while the old pair keeps working until it expires.
 */
async function keepOwner(handle: FileHandle, path: string, replaced: Stats): Promise<void> {
  const own = await handle.stat();
  if (own.uid === replaced.uid && own.gid === replaced.gid) return;
  try {
    await handle.chown(replaced.uid, replaced.gid);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? 'error';
    throw new MeshauthError(
      'MESHAUTH_ERR_FILE_UNWRITABLE',
      `cannot write ${path}: ${code} (chown): it belongs to uid ${replaced.uid} gid ${replaced.gid}, which this user cannot give the new file; run as that user or as root`,
      { reason: 'file_unwritable', cause },
    );
  }
}
