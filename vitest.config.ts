import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

const UNIT = 'test/unit';
const SOCKETS = ['test/integration', 'test/e2e'];

/**
 * Files that replace a module (`vi.mock`): a module graph shared with other files would hand them the real module
 * already loaded by an earlier file, so they keep a process of their own.
 */
function filesMockingModules(dirs: readonly string[]): string[] {
  return dirs.flatMap((dir) =>
    readdirSync(dir, { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.test.ts'))
      .map((file) => join(dir, file))
      .filter((file) => /\bvi\.(do)?[mM]ock\(/.test(readFileSync(file, 'utf8'))),
  );
}

/**
 * Files that judge the whole process: they compare its descriptors, handles, heap and RSS with a baseline, count its
 * listeners, or set a V8 flag for the rest of the process. Whatever an earlier file left behind would count against
 * them.
 */
const WHOLE_PROCESS = [
  'test/integration/inbound-handshake-storm.test.ts',
  'test/integration/sidecar-streaming.test.ts',
  // Counts every listening handle in the process: one that another file left open would count against it.
  'test/integration/gateway-parts-cleanup.test.ts',
];

const isolated = [...filesMockingModules([UNIT, ...SOCKETS]), ...WHOLE_PROCESS];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration and e2e tests start real servers and child processes; two workers fit the 2-core CI.
    pool: 'forks',
    maxWorkers: 2,
    setupFiles: ['test/helpers/setup.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: [`${UNIT}/**/*.test.ts`],
          exclude: isolated,
          // Pure tests share their worker's module graph: a fresh process per file spent most of the unit run
          // importing the same modules again (155 files: 212 s isolated against 85 s shared, on a busy machine).
          isolate: false,
        },
      },
      {
        extends: true,
        test: {
          name: 'sockets',
          include: SOCKETS.map((dir) => `${dir}/**/*.test.ts`),
          exclude: isolated,
          // Real sockets and child processes, run one file after another in a shared module graph: every file closes
          // what it starts and puts back what it changes in the process (environment, umask, patched methods), and
          // a fresh process per file cost the suite about 250 s of imports per run.
          isolate: false,
        },
      },
      {
        extends: true,
        test: {
          name: 'isolated',
          // Each file in a process of its own, so nothing another file leaves behind reaches it.
          include: isolated,
        },
      },
    ],
  },
});
