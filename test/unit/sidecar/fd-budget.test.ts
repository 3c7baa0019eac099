// The connection cap leaves room under the open-file limit for the app pool and a fixed reserve.
import { describe, expect, it } from 'vitest';
import { effectiveMaxConnections, FD_RESERVE, openFileLimit } from '../../../src/sidecar/inbound/fd-budget.js';

describe('effectiveMaxConnections', () => {
  const cases: Array<[string, number, number | undefined, number, number]> = [
    ['ok/a large limit keeps the configured cap', 4096, 1_048_576, 128, 4096],
    ['ok/an unknown limit keeps the configured cap', 4096, undefined, 128, 4096],
    ['fail/a bare-shell limit lowers the cap below it', 4096, 1024, 128, 1024 - 128 - FD_RESERVE],
    ['fail/a limit smaller than the reserve still admits one', 4096, 100, 128, 1],
  ];
  it.each(cases)('%s', (_name, configured, limit, pool, expected) => {
    expect(effectiveMaxConnections(configured, limit, pool)).toBe(expected);
  });

  it.skipIf(process.platform !== 'linux')('ok/reads this process limit on Linux', () => {
    expect(openFileLimit()).toBeGreaterThan(0);
  });
});
