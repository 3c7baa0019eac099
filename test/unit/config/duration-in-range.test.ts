import { describe, expect, it } from 'vitest';
import { durationInRange } from '../../../src/config/duration.js';
import { MeshauthError } from '../../../src/errors/index.js';

const [MIN, MAX] = [60_000, 86_400_000];

describe('durationInRange', () => {
  it.each([
    ['ok/1m', '1m', 60_000],
    ['ok/24h', '24h', 86_400_000],
    ['ok/ 90s (trimmed)', ' 90s', 90_000],
  ])('%s', (_name, text, ms) => {
    expect(durationInRange('--ttl', text, MIN, MAX)).toBe(ms);
  });

  it.each([
    ['fail/0s', '0s', '--ttl 0s is out of range: must be between 1m and 24h'],
    ['fail/59999ms', '59999ms', '--ttl 59999ms is out of range: must be between 1m and 24h'],
    ['fail/2d', '2d', '--ttl 2d is out of range: must be between 1m and 24h'],
  ])('%s → MESHAUTH_ERR_TTL_OUT_OF_RANGE in the words typed', (_name, text, message) => {
    const error = (() => {
      try {
        durationInRange('--ttl', text, MIN, MAX);
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
    expect(() => durationInRange('--ttl', 'soon', MIN, MAX)).toThrow(
      expect.objectContaining({ code: 'MESHAUTH_ERR_USAGE' }),
    );
  });
});
