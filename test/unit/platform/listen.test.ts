// Which Node lines set SO_REUSEPORT: older ones ignore `reusePort`, so the CA must refuse the flag there.
import { describe, expect, it } from 'vitest';
import { reusePortSupported } from '../../../src/platform/index.js';

describe('reusePortSupported', () => {
  it.each([
    ['20.18.0', false],
    ['22.11.0', false],
    ['22.12.0', true],
    ['23.0.0', true],
    ['24.21.0', true],
    ['30.1.2', true],
  ])('%s → %s', (version, expected) => {
    expect(reusePortSupported(version)).toBe(expected);
  });
});
