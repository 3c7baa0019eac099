// Which Node lines and systems set SO_REUSEPORT: older Node ignores `reusePort` and macOS or Windows refuse it, so
// the CA must refuse the flag there.
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
  ])('Linux, Node %s → %s', (version, expected) => {
    expect(reusePortSupported(version, 'linux')).toBe(expected);
  });

  it.each([
    ['freebsd', true],
    ['darwin', false],
    ['win32', false],
  ] as const)('Node 24 on %s → %s', (platform, expected) => {
    expect(reusePortSupported('24.21.0', platform)).toBe(expected);
  });
});
