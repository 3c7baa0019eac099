// Holds a child process of the built CLI still in the middle of writing a CA directory, so a test can run a second
// command at exactly that moment instead of hoping two processes meet there. A preload (NODE_OPTIONS --import) wraps
// fs/promises rename: after the first rename onto a file named `file`, the child writes `<gate>.reached` and waits
// (bounded) until `<gate>` exists. Nothing else in the child changes.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from './wait.js';

const PRELOAD = `
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { basename } from 'node:path';
const file = process.env.MESHAUTH_TEST_PAUSE_FILE;
const gate = process.env.MESHAUTH_TEST_PAUSE_GATE;
if (file && gate) {
  const rename = fs.promises.rename;
  let paused = false;
  fs.promises.rename = async function pausingRename(from, to) {
    await rename.call(this, from, to);
    if (paused || basename(String(to)) !== file) return;
    paused = true;
    fs.writeFileSync(gate + '.reached', String(process.pid));
    const deadline = Date.now() + 60_000;
    while (!fs.existsSync(gate)) {
      if (Date.now() > deadline) throw new Error('pause-at-rename: the gate never opened');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  syncBuiltinESMExports();
}
`;

export interface RenamePause {
  /** Environment for the child: its first rename onto `file` is followed by the pause. */
  readonly env: NodeJS.ProcessEnv;
  /** Resolves once the child has renamed the file and is waiting. */
  reached(timeoutMs?: number): Promise<void>;
  /** Lets the child go on. */
  release(): void;
}

/** A pause for one child, with its preload and gate in `workDir` (a temporary directory the test owns). */
export function pauseAfterRename(workDir: string, file: string, name = 'pause'): RenamePause {
  const preload = join(workDir, `${name}-preload.mjs`);
  const gate = join(workDir, `${name}.gate`);
  writeFileSync(preload, PRELOAD);
  const inherited = process.env.NODE_OPTIONS ?? '';
  return {
    env: {
      ...process.env,
      NODE_OPTIONS: `${inherited} --import=${preload}`.trim(),
      MESHAUTH_TEST_PAUSE_FILE: file,
      MESHAUTH_TEST_PAUSE_GATE: gate,
    },
    reached: async (timeoutMs = 30_000) => {
      await waitFor(`a child paused after renaming ${file}`, () => existsSync(`${gate}.reached`), timeoutMs);
    },
    release: () => writeFileSync(gate, ''),
  };
}
