// Which version of each file a path names now, to see that a watched file changed (replaced, rewritten, or a
// Secret volume's `..data` symlink swapped) without reading it.
//
// Synchronous, like readRegularFile: a stat of a path on a local or in-memory volume costs a few µs on the thread
// that asks. Through fs.promises each stat is a round trip to a thread-pool thread and back, and a watcher that
// checks a handful of files every second woke a pool thread per file and the main thread again for the answers:
// on an idle process those wake-ups, not the stats, were what the check cost.
import { statSync } from 'node:fs';

/**
 * One string per call that changes when any of the files does: inode, size and modification time of each (a change
 * time too with `ctime`), `missing:<errno code>` for a path that cannot be stat'ed. stat follows symlinks.
 */
export function fileVersions(files: readonly string[], options: { readonly ctime?: boolean } = {}): string {
  return files.map((file) => fileVersion(file, options.ctime === true)).join('|');
}

function fileVersion(file: string, ctime: boolean): string {
  try {
    const s = statSync(file, { throwIfNoEntry: false });
    if (s === undefined) return 'missing:ENOENT';
    return ctime ? `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}` : `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch (error) {
    return `missing:${(error as NodeJS.ErrnoException).code ?? ''}`;
  }
}
