// Runs once before the suite: the e2e tests run the built CLI, so rebuild dist/ when any source is newer than it
// (tsc 7 takes a second or two). `npm ci` builds it too; this keeps `npm test` right after an edit.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = new URL('../..', import.meta.url).pathname;

function newest(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((name) => newest(join(path, name))));
}

export default function setup(): void {
  const main = join(ROOT, 'dist/src/cli/main.js');
  const stale =
    !existsSync(main) || Math.max(newest(join(ROOT, 'src')), newest(join(ROOT, 'bench'))) > newest(join(ROOT, 'dist'));
  if (!stale) return;
  try {
    execFileSync(
      process.execPath,
      [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json')],
      { stdio: 'inherit' },
    );
  } catch (error) {
    // tsc still emits on type errors; `npm run typecheck` is the gate for those. Only a missing CLI stops the suite.
    if (!existsSync(main)) throw error;
    console.warn('global-setup: tsc reported errors; the suite runs against what it emitted');
  }
}
