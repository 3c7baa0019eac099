// Kills a child process of the built CLI with SIGKILL right after its Nth change to the file system, so a test can
// stop a command at every step of what it writes, in turn, instead of hoping a timed kill lands somewhere useful. A
// preload (NODE_OPTIONS --import) wraps the fs/promises calls that change something (open for writing, rename, link,
// mkdir, rm, unlink, rmdir); after the Nth one returns, the child kills itself. Nothing else in the child changes.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAIN } from './meshauth-cli.js';

const PRELOAD = `
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
const limit = Number(process.env.MESHAUTH_TEST_KILL_AFTER);
let changes = 0;
function counted(name, changes_ = () => true) {
  const original = fs.promises[name];
  fs.promises[name] = async function countedCall(...args) {
    const result = await original.apply(this, args);
    if (changes_(...args) && ++changes === limit) process.kill(process.pid, 'SIGKILL');
    return result;
  };
}
if (limit > 0) {
  for (const name of ['rename', 'link', 'mkdir', 'rm', 'unlink', 'rmdir']) counted(name);
  counted('open', (path, flags) => typeof flags === 'string' && /[wa+]/.test(flags));
  syncBuiltinESMExports();
}
`;

export interface KilledRun {
  /** The exit code when the command ran to its end (it made fewer changes than asked), else null. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

/** Writes the preload into `workDir` (a temporary directory the test owns) and returns a runner using it. */
export function killAfterWrites(
  workDir: string,
): (changes: number, args: readonly string[], cwd: string) => Promise<KilledRun> {
  const preload = join(workDir, 'kill-after-writes.mjs');
  writeFileSync(preload, PRELOAD);
  return (changes, args, cwd) =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [MAIN, ...args], {
        cwd,
        stdio: ['ignore', 'ignore', 'pipe'],
        env: {
          ...process.env,
          NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${preload}`.trim(),
          MESHAUTH_TEST_KILL_AFTER: String(changes),
        },
      });
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      child.once('error', reject);
      child.once('close', (code, signal) => resolve({ code, signal, stderr }));
    });
}
