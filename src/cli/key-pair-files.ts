// How `cert request`, `cert renew` and `ca issue` put a new key and chain where the files of the workload are. Every
// file is staged complete and fsync'd next to its target before the first is replaced, so a failure to write any of
// them (a full disk, a directory that takes no new file) replaces none. A replaced regular file keeps its owner, group and
// mode: the CLI is often run as root for an app that runs as its own user and must still read its key. Only in a
// directory no one but its owner can write: elsewhere (/tmp, a shared directory) anyone could have put the file there
// first, and taking its owner or mode would hand them the new key. A symlink at a target is replaced, never followed,
// and lends nothing.
import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { type FileHandle, link as linkFile, lstat, mkdir, open, rename, rm, rmdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { MeshauthError } from '../errors/index.js';

/**
 * Creates `dir` (and its parents) for a key and its chain, 0755 at most. With the umask's mode alone, umask 000 (set
 * in some container images) made them 0777, so any local user could delete or swap the workload's key and chain.
 * Not narrower: apps running as other users still reach the chain. Returns the directories it created, deepest
 * first, for a command that fails before writing anything to take back (removeEmptyDirectories).
 */
export async function makeKeyDirectory(dir: string): Promise<string[]> {
  const first = await mkdir(dir, { recursive: true, mode: 0o755 });
  if (first === undefined) return [];
  // Spelled as `dir` is, never resolved: mkdir follows a symlink before a `..`, a resolved path drops both, and it
  // then names other directories than those made (empty ones of the user's among them, which rmdir would take).
  // mkdir gives the first one it made in the same spelling, a parent of `dir` by string; not met, none is claimed.
  const created: string[] = [];
  for (let at = dir; ; at = dirname(at)) {
    created.push(at);
    if (at === first) return created;
    if (dirname(at) === at) return [];
  }
}

/**
 * Removes `dirs` in order while each is empty, and stops at the first that is not (or is gone): a directory that
 * has gained a file since, the lock of another run for the same pair among them, is left with its content.
 */
export async function removeEmptyDirectories(dirs: readonly string[]): Promise<void> {
  for (const dir of dirs) {
    try {
      await rmdir(dir);
    } catch {
      return;
    }
  }
}

export interface FileToReplace {
  readonly path: string;
  readonly data: string | Uint8Array;
  /** The mode of a new file; a replaced regular file keeps its own. */
  readonly mode: number;
}

/**
 * Replaces `files` in order, each by a rename: none of them when one cannot be staged, and the earlier ones put back
 * when a later rename fails (the target is immutable, or a bind-mounted file: EPERM, EBUSY). Replacing the key and then
 * failing on the chain used to leave a key that matches no certificate on disk, which not even `cert renew` could
 * mend (it authenticates with that pair): the workload needed a new join token.
 */
export async function replaceFiles(files: readonly FileToReplace[]): Promise<void> {
  const staged: string[] = [];
  const previous: Previous[] = [];
  let renamed = 0;
  try {
    for (const file of files) staged.push(await stage(file));
    for (const file of files.slice(0, -1)) previous.push(await keepPrevious(file.path));
    for (const [index, file] of files.entries()) {
      await rename(staged[index] as string, file.path).catch((error: NodeJS.ErrnoException) => {
        // Named by the file the caller gave, not the temporary one.
        throw Object.assign(error, { path: file.path, syscall: 'rename' });
      });
      renamed = index + 1;
    }
  } catch (error) {
    await putBack(files.slice(0, renamed), previous);
    await Promise.all(staged.slice(renamed).map((tmp) => rm(tmp, { force: true })));
    throw error;
  } finally {
    await Promise.all(previous.map((p) => (p.link === undefined ? undefined : rm(p.link, { force: true }))));
  }
}

/** What was at a path before it was replaced: a second name for it, none when there was nothing, or unknown. */
interface Previous {
  readonly link?: string;
  readonly existed: boolean;
}

/** A hard link to what is at `path` (a symlink too: link(2) does not follow it), to put it back by a rename. */
async function keepPrevious(path: string): Promise<Previous> {
  const link = tempPath(path);
  try {
    await linkFile(path, link);
    return { link, existed: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { existed: false };
    // A file system without hard links: replaced as before, without a way back.
    return { existed: true };
  }
}

/** Undoes the renames of `replaced`: the previous file back by a rename, or the new one removed if there was none. */
async function putBack(replaced: readonly FileToReplace[], previous: readonly Previous[]): Promise<void> {
  for (const [index, file] of replaced.entries()) {
    const before = previous[index];
    if (before?.link !== undefined) await rename(before.link, file.path).catch(() => undefined);
    else if (before?.existed === false) await rm(file.path, { force: true });
  }
}

function tempPath(path: string): string {
  return join(dirname(path), `.${randomBytes(6).toString('hex')}.tmp`);
}

/** A complete, fsync'd temporary file next to `file.path`, with the owner, group and mode the target will have. */
async function stage(file: FileToReplace): Promise<string> {
  const replaced = await regularFileAt(file.path);
  const tmp = tempPath(file.path);
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
    if (error instanceof MeshauthError) throw error;
    // A full disk fails here, not at open(): Node's error names no path, and the CLI reports one without a path raw
    // (no code, exit 1) instead of MESHAUTH_ERR_FILE_UNWRITABLE naming the file.
    throw Object.assign(error as NodeJS.ErrnoException, { path: file.path, syscall: 'write' });
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
