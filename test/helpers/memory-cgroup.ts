// Real memory cgroups (v1 or v2) for tests that must see what a container's memory limit does to a process: made
// when the machine lets the test (root, a writable cgroup tree; CI runs as root), else undefined and the case skips.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const made: string[] = [];
let serial = 0;

/** A new memory cgroup limited to `bytes`, or undefined when this machine does not let the test make one. */
export function memoryCgroup(bytes: number): string | undefined {
  const name = `meshauth-test-${process.pid}-${serial++}`;
  const v1 = '/sys/fs/cgroup/memory';
  let dir: string;
  let limitFile: string;
  try {
    if (existsSync(join(v1, 'memory.limit_in_bytes'))) {
      dir = join(v1, name);
      limitFile = 'memory.limit_in_bytes';
    } else if (readFileSync('/sys/fs/cgroup/cgroup.subtree_control', 'utf8').split(/\s+/).includes('memory')) {
      dir = join('/sys/fs/cgroup', name);
      limitFile = 'memory.max';
    } else {
      return undefined;
    }
    mkdirSync(dir);
  } catch {
    return undefined;
  }
  made.push(dir);
  try {
    writeFileSync(join(dir, limitFile), String(bytes));
  } catch {
    return undefined;
  }
  return dir;
}

/** The arguments of `/bin/sh` that start `command args…` inside `cgroup` (it joins, then execs). */
export function inCgroup(cgroup: string, command: string, args: readonly string[]): string[] {
  return ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup, command, ...args];
}

/** Whether a process can be started inside a new memory cgroup here (made, limited, joined). */
export function cgroupsUsable(): boolean {
  const probe = memoryCgroup(256 * 2 ** 20);
  if (probe === undefined) return false;
  try {
    execFileSync('/bin/sh', inCgroup(probe, 'true', []), { timeout: 10_000 });
    return true;
  } catch {
    return false;
  } finally {
    removeMadeCgroups();
  }
}

/** Removes the cgroups made so far: a cgroup whose process has exited is empty and can be removed. */
export function removeMadeCgroups(): void {
  for (const dir of made.splice(0)) {
    try {
      rmdirSync(dir);
    } catch {
      // not made, or already gone
    }
  }
}
