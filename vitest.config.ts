import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

const UNIT = 'test/unit';

/**
 * Unit test files that replace a module (`vi.mock`): a module graph shared with other files would hand them the real
 * module already loaded by an earlier file, so they keep a process of their own.
 */
function unitFilesMockingModules(): string[] {
  return readdirSync(UNIT, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.test.ts'))
    .map((file) => join(UNIT, file))
    .filter((file) => /\bvi\.(do)?[mM]ock\(/.test(readFileSync(file, 'utf8')));
}

const isolatedUnit = unitFilesMockingModules();

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
          exclude: isolatedUnit,
          // Pure tests share their worker's module graph: a fresh process per file spent most of the unit run
          // importing the same modules again (155 files: 212 s isolated against 85 s shared, on a busy machine).
          isolate: false,
        },
      },
      {
        extends: true,
        test: {
          name: 'isolated',
          // Real sockets and child processes: each file in a process of its own, so nothing one leaves behind
          // (a listener, a timer, an environment variable) reaches the next.
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts', ...isolatedUnit],
        },
      },
    ],
  },
});
