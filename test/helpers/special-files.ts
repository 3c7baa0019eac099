// Paths that name something other than a regular file, for the readers of operator-controlled files.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** A FIFO (named pipe) with no writer: opening it for reading without O_NONBLOCK waits for one. */
export function fifoIn(dir: string, name: string): string {
  const path = join(dir, name);
  execFileSync('mkfifo', [path]);
  return path;
}

/** A character device that never ends. */
export const ENDLESS_DEVICE = '/dev/zero';
