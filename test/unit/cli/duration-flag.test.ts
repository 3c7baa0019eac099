import { describe, expect, it } from 'vitest';
import { durationFlag } from '../../../src/cli/duration-flag.js';
import { MeshauthError } from '../../../src/errors/index.js';

const RANGE = { min: 60_000, max: 86_400_000 };

describe('durationFlag', () => {
  it.each([
    ['ok/1m', '1m', 60_000],
    ['ok/24h', '24h', 86_400_000],
    ['ok/ 90s (trimmed)', ' 90s', 90_000],
  ])('%s', (_name, text, ms) => {
    expect(durationFlag('--ttl', text, RANGE)).toBe(ms);
  });

  it.each([
    ['fail/0s', '0s', '--ttl 0s is out of range: must be between 1m and 24h'],
    ['fail/59999ms', '59999ms', '--ttl 59999ms is out of range: must be between 1m and 24h'],
    ['fail/2d', '2d', '--ttl 2d is out of range: must be between 1m and 24h'],
  ])('%s → MESHAUTH_ERR_TTL_OUT_OF_RANGE in the words typed', (_name, text, message) => {
    const error = (() => {
      try {
        durationFlag('--ttl', text, RANGE);
      } catch (e) {
        return e;
      }
      return undefined;
    })() as MeshauthError;
    expect(error).toBeInstanceOf(MeshauthError);
    expect(error.code).toBe('MESHAUTH_ERR_TTL_OUT_OF_RANGE');
    expect(error.message).toBe(message);
  });

  it('fail/not a duration → MESHAUTH_ERR_USAGE', () => {
    expect(() => durationFlag('--ttl', 'soon', RANGE)).toThrow(expect.objectContaining({ code: 'MESHAUTH_ERR_USAGE' }));
  });
});
