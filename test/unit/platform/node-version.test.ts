// The one Node version gate: a feature is there from the first release named for a line, and in every later line.
import { describe, expect, it } from 'vitest';
import { nodeHas } from '../../../src/platform/index.js';

describe('nodeHas', () => {
  const since = [
    [22, 20],
    [24, 7],
  ] as const;
  it.each([
    ['20.19.5', false],
    ['22.19.0', false],
    ['22.20.0', true],
    ['23.11.0', false],
    ['24.6.0', false],
    ['24.7.0', true],
    ['24.21.0', true],
    ['25.0.0', true],
  ])('%s: %s', (version, has) => {
    expect(nodeHas(since, version)).toBe(has);
  });
});
